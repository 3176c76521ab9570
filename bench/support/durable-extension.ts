/**
 * A stand-in for the Durable extension's HTTP API that starts orchestrations the way the extension's Azure Storage
 * provider does, without running them. DurableTask.AzureStorage's CreateTaskOrchestrationAsync makes three storage
 * round trips, one after the other: it reads the instance's row in the task hub's Instances table (a Pending or
 * Running instance refuses the start), puts the ExecutionStarted message on the control queue the instance id hashes
 * to, then writes the row as Pending (SetNewExecutionAsync). This does the same against the benchmark's Azurite, so a
 * start costs the enrolment the round trips it costs in Azure, on the storage the registry also uses. What each round
 * trip costs here is this machine's (Azurite shares its two cores), not Azure's. `getStatus` reads the row. No
 * orchestration runs.
 *
 * It runs in a process of its own (durable-extension-process.ts), as the Durable extension runs in the Functions host and
 * not in the Node worker: the worker pays for the client's side of a start, never for the server's.
 */
import { createServer } from "node:http";
import { fileURLToPath } from "node:url";
import { TableClient, type TableEntityResult } from "@azure/data-tables";
import { QueueClient } from "@azure/storage-queue";
import { durableClientBinding, type DurableClientBinding } from "../../test/durable/index.js";
import { closeServer, listenOnLoopback, readBody } from "../../test/support/index.js";
import { forkHelper } from "./child-rpc.js";

export interface DurableExtensionStandIn {
  binding: DurableClientBinding;
  /** Orchestrations started so far. */
  starts(): Promise<number>;
  close(): Promise<void>;
}

const TASK_HUB = "FlexNodeBench";
/** The extension's default partitionCount: one control queue per partition. */
const PARTITIONS = 4;
const ENTRY = fileURLToPath(new URL("./durable-extension-process.ts", import.meta.url));

export async function startDurableExtensionStandIn(options: { storageConnectionString: string }): Promise<DurableExtensionStandIn> {
  const helper = await forkHelper<"starts", number, { origin: string }>(ENTRY, "Durable extension stand-in", [options.storageConnectionString]);
  return {
    binding: durableClientBinding(helper.ready.origin, TASK_HUB, "extension"),
    starts: () => helper.call("starts"),
    close: () => helper.close(),
  };
}

/** FNV-1a over the id's UTF-16 code units, as the provider hashes an instance id to its control queue. */
function partitionOf(instanceId: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < instanceId.length; i++) {
    const unit = instanceId.charCodeAt(i);
    hash = Math.imul(hash ^ (unit & 0xff), 0x01000193);
    hash = Math.imul(hash ^ (unit >>> 8), 0x01000193);
  }
  return (hash >>> 0) % PARTITIONS;
}

const statusOf = (id: string, row: TableEntityResult<Record<string, unknown>>) => ({
  name: row["Name"],
  instanceId: id,
  runtimeStatus: row["RuntimeStatus"],
  input: row["Input"] === undefined ? null : JSON.parse(String(row["Input"])),
  customStatus: null,
  output: null,
  createdTime: row["CreatedTime"],
  lastUpdatedTime: row["LastUpdatedTime"],
});

/** The stand-in itself, in the process that calls this: its origin and how many starts it recorded. */
export async function serveDurableExtension(storageConnectionString: string): Promise<{ origin: string; starts(): number; close(): Promise<void> }> {
  const instances = TableClient.fromConnectionString(storageConnectionString, `${TASK_HUB}Instances`, { allowInsecureConnection: true });
  await instances.createTable();
  const controlQueues = Array.from(
    { length: PARTITIONS },
    (_, i) => new QueueClient(storageConnectionString, `${TASK_HUB.toLowerCase()}-control-${String(i).padStart(2, "0")}`),
  );
  await Promise.all(controlQueues.map((q) => q.createIfNotExists()));
  const rowOf = async (id: string) => {
    try {
      return await instances.getEntity<Record<string, unknown>>(id, "");
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode === 404) return undefined;
      throw e;
    }
  };

  let starts = 0;
  let origin = "";
  const server = createServer((req, res) => {
    const send = (status: number, body?: unknown) => {
      res.writeHead(status, body === undefined ? {} : { "content-type": "application/json; charset=utf-8" });
      res.end(body === undefined ? "" : JSON.stringify(body));
    };
    const answer = async () => {
      const body = (await readBody(req)).toString("utf8");
      const path = new URL(req.url ?? "/", origin).pathname.replace(/^\/runtime\/webhooks\/durabletask\//, "/durabletask/");
      let m: RegExpExecArray | null;
      if (req.method === "POST" && (m = /^\/durabletask\/orchestrators\/([^/]+)\/([^/]+)$/.exec(path))) {
        const name = decodeURIComponent(m[1]!);
        const id = decodeURIComponent(m[2]!);
        const existing = await rowOf(id);
        const refuse = () => send(409, { message: `An Orchestration instance with the status Pending already exists: ${id}` });
        if (existing && ["Pending", "Running"].includes(String(existing["RuntimeStatus"]))) return refuse();
        const now = new Date().toISOString();
        const input = body === "" ? undefined : body;
        await controlQueues[partitionOf(id)]!.sendMessage(
          JSON.stringify({ TaskMessage: { Event: { EventType: "ExecutionStarted", Name: name, Input: input }, OrchestrationInstance: { InstanceId: id } } }),
        );
        const row = {
          partitionKey: id,
          rowKey: "",
          Name: name,
          Input: input,
          CreatedTime: now,
          LastUpdatedTime: now,
          RuntimeStatus: "Pending",
          TaskHubName: TASK_HUB,
        };
        try {
          if (existing) await instances.updateEntity(row, "Replace", { etag: existing.etag });
          else await instances.createEntity(row);
        } catch (e) {
          // Another start of the same id won the row between the read and this write.
          if ([409, 412].includes((e as { statusCode?: number }).statusCode ?? 0)) return refuse();
          throw e;
        }
        starts++;
        return send(202, { id, statusQueryGetUri: `${origin}/runtime/webhooks/durabletask/instances/${encodeURIComponent(id)}` });
      }
      if (req.method === "GET" && (m = /^\/durabletask\/instances\/([^/]+)$/.exec(path))) {
        const id = decodeURIComponent(m[1]!);
        const row = await rowOf(id);
        if (!row) return send(404, { message: `No instance with ID '${id}' found.` });
        return send(202, statusOf(id, row));
      }
      return send(404, { message: `no route for ${req.method} ${path}` });
    };
    answer().catch((e: unknown) => send(500, { message: e instanceof Error ? e.message : String(e) }));
  });
  origin = `http://127.0.0.1:${await listenOnLoopback(server)}`;
  return { origin, starts: () => starts, close: () => closeServer(server) };
}
