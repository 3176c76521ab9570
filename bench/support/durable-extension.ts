/**
 * A stand-in for the Durable extension's HTTP API that starts orchestrations without running them, in a process of
 * its own (durable-extension-process.ts), as the Durable extension runs in the Functions host and not in the Node
 * worker: the worker pays for the client's side of a start, never for the server's (nor for accepting the client's
 * connections, which a busy Node server does one per turn of its loop: see host-front.ts).
 *
 * Two stores. `azure-storage` starts as the extension's Azure Storage provider does: DurableTask.AzureStorage's
 * CreateTaskOrchestrationAsync makes three storage round trips, one after the other: it reads the instance's row in
 * the task hub's Instances table (a Pending or Running instance refuses the start), puts the ExecutionStarted message
 * on the control queue the instance id hashes to, then writes the row as Pending (SetNewExecutionAsync). This does the
 * same against the benchmark's Azurite, so a start costs the enrolment the round trips it costs in Azure, on the
 * storage the registry also uses. What each round trip costs here is this machine's (Azurite shares its two cores),
 * not Azure's. `memory` keeps the instances in the process and answers at once: the start as cheap as it can be, so
 * what is measured is the service. `getStatus` reads the instance. No orchestration runs.
 */
import { createServer } from "node:http";
import { fileURLToPath } from "node:url";
import { TableClient } from "@azure/data-tables";
import { QueueClient } from "@azure/storage-queue";
import { durableClientBinding, type DurableClientBinding } from "../../test/durable/index.js";
import { closeServer, listenOnLoopback, readBody } from "../../test/support/index.js";
import { forkHelper } from "./child-rpc.js";

export interface DurableExtensionStandIn {
  binding: DurableClientBinding;
  /** The stand-in's process. */
  pid: number;
  /** Orchestrations started so far. */
  starts(): Promise<number>;
  close(): Promise<void>;
}

const TASK_HUB = "FlexNodeBench";
/** The extension's default partitionCount: one control queue per partition. */
const PARTITIONS = 4;
const ENTRY = fileURLToPath(new URL("./durable-extension-process.ts", import.meta.url));

/** Where a stand-in keeps its instances: in its own memory, or as the Azure Storage provider does, in this storage account. */
export type InstanceStoreKind = { memory: true } | { storageConnectionString: string };

export async function startDurableExtensionStandIn(store: InstanceStoreKind): Promise<DurableExtensionStandIn> {
  const helper = await forkHelper<"starts", number, { origin: string }>(ENTRY, "Durable extension stand-in", [
    "memory" in store ? "memory" : store.storageConnectionString,
  ]);
  return {
    binding: durableClientBinding(helper.ready.origin, TASK_HUB, "extension"),
    pid: helper.pid,
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

interface Instance {
  name: string;
  input: string | undefined;
  runtimeStatus: string;
  createdTime: string;
  lastUpdatedTime: string;
}

interface InstanceStore {
  /** Records a Pending instance; false, changing nothing, when one is Pending or Running under that id. */
  start(id: string, name: string, input: string | undefined): Promise<boolean>;
  get(id: string): Promise<Instance | undefined>;
}

const isLive = (status: unknown) => status === "Pending" || status === "Running";

function memoryStore(): InstanceStore {
  const instances = new Map<string, Instance>();
  return {
    start: async (id, name, input) => {
      if (isLive(instances.get(id)?.runtimeStatus)) return false;
      const now = new Date().toISOString();
      instances.set(id, { name, input, runtimeStatus: "Pending", createdTime: now, lastUpdatedTime: now });
      return true;
    },
    get: async (id) => instances.get(id),
  };
}

async function azureStorageStore(storageConnectionString: string): Promise<InstanceStore> {
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
  return {
    start: async (id, name, input) => {
      const existing = await rowOf(id);
      if (existing && isLive(existing["RuntimeStatus"])) return false;
      const now = new Date().toISOString();
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
        if ([409, 412].includes((e as { statusCode?: number }).statusCode ?? 0)) return false;
        throw e;
      }
      return true;
    },
    get: async (id) => {
      const row = await rowOf(id);
      return (
        row && {
          name: String(row["Name"]),
          input: row["Input"] === undefined ? undefined : String(row["Input"]),
          runtimeStatus: String(row["RuntimeStatus"]),
          createdTime: String(row["CreatedTime"]),
          lastUpdatedTime: String(row["LastUpdatedTime"]),
        }
      );
    },
  };
}

/** The stand-in itself, in the process that calls this: its origin and how many starts it recorded. */
export async function serveDurableExtension(store: InstanceStoreKind): Promise<{ origin: string; starts(): number; close(): Promise<void> }> {
  const instances = "memory" in store ? memoryStore() : await azureStorageStore(store.storageConnectionString);
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
        const id = decodeURIComponent(m[2]!);
        if (!(await instances.start(id, decodeURIComponent(m[1]!), body === "" ? undefined : body)))
          return send(409, { message: `An Orchestration instance with the status Pending already exists: ${id}` });
        starts++;
        return send(202, { id, statusQueryGetUri: `${origin}/runtime/webhooks/durabletask/instances/${encodeURIComponent(id)}` });
      }
      if (req.method === "GET" && (m = /^\/durabletask\/instances\/([^/]+)$/.exec(path))) {
        const id = decodeURIComponent(m[1]!);
        const instance = await instances.get(id);
        if (!instance) return send(404, { message: `No instance with ID '${id}' found.` });
        return send(202, {
          name: instance.name,
          instanceId: id,
          runtimeStatus: instance.runtimeStatus,
          input: instance.input === undefined ? null : JSON.parse(instance.input),
          customStatus: null,
          output: null,
          createdTime: instance.createdTime,
          lastUpdatedTime: instance.lastUpdatedTime,
        });
      }
      return send(404, { message: `no route for ${req.method} ${path}` });
    };
    answer().catch((e: unknown) => send(500, { message: e instanceof Error ? e.message : String(e) }));
  });
  origin = `http://127.0.0.1:${await listenOnLoopback(server)}`;
  return { origin, starts: () => starts, close: () => closeServer(server) };
}
