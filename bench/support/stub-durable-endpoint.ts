/**
 * A stand-in for the Durable extension's HTTP API that only records starts: the durable client's `startNew` gets 202
 * and `getStatus` gets the recorded instance (or 404). No orchestration runs. With it, an enrolment benchmark measures
 * the enrolment itself, the client's loopback HTTP calls included, without the Durable simulator behind them.
 *
 * It runs in a process of its own (stub-durable-process.ts), as the Durable extension runs in the Functions host and
 * not in the Node worker: the worker pays for the client's side of a start, never for the server's.
 */
import { createServer } from "node:http";
import { fileURLToPath } from "node:url";
import { durableClientBinding, type DurableClientBinding } from "../../test/durable/index.js";
import { closeServer, listenOnLoopback } from "../../test/support/index.js";
import { forkHelper } from "./child-rpc.js";

export interface StubDurableEndpoint {
  binding: DurableClientBinding;
  /** Orchestrations started so far. */
  starts(): Promise<number>;
  close(): Promise<void>;
}

const TASK_HUB = "FlexNodeBench";
const ENTRY = fileURLToPath(new URL("./stub-durable-process.ts", import.meta.url));

export async function startStubDurableEndpoint(): Promise<StubDurableEndpoint> {
  const helper = await forkHelper<"starts", number, { origin: string }>(ENTRY, "durable stub");
  return {
    binding: durableClientBinding(helper.ready.origin, TASK_HUB, "stub"),
    starts: () => helper.call("starts"),
    close: () => helper.close(),
  };
}

/** The stand-in itself, in the process that calls this: its origin and how many starts it recorded. */
export async function serveStubDurable(): Promise<{ origin: string; starts(): number; close(): Promise<void> }> {
  const instances = new Map<string, { name: string; createdTime: string }>();
  let origin = "";
  const server = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      const path = new URL(req.url ?? "/", origin).pathname.replace(/^\/runtime\/webhooks\/durabletask\//, "/durabletask/");
      let m: RegExpExecArray | null;
      const send = (status: number, body?: unknown) => {
        res.writeHead(status, body === undefined ? {} : { "content-type": "application/json; charset=utf-8" });
        res.end(body === undefined ? "" : JSON.stringify(body));
      };
      if (req.method === "POST" && (m = /^\/durabletask\/orchestrators\/([^/]+)\/([^/]+)$/.exec(path))) {
        const id = decodeURIComponent(m[2]!);
        if (instances.has(id)) return send(409, { message: `An Orchestration instance with the status Pending already exists: ${id}` });
        instances.set(id, { name: decodeURIComponent(m[1]!), createdTime: new Date().toISOString() });
        return send(202, { id, statusQueryGetUri: `${origin}/runtime/webhooks/durabletask/instances/${encodeURIComponent(id)}` });
      }
      if (req.method === "GET" && (m = /^\/durabletask\/instances\/([^/]+)$/.exec(path))) {
        const id = decodeURIComponent(m[1]!);
        const inst = instances.get(id);
        if (!inst) return send(404, { message: `No instance with ID '${id}' found.` });
        return send(202, {
          name: inst.name,
          instanceId: id,
          runtimeStatus: "Pending",
          input: null,
          customStatus: null,
          output: null,
          createdTime: inst.createdTime,
          lastUpdatedTime: inst.createdTime,
        });
      }
      return send(404, { message: `no route for ${req.method} ${path}` });
    });
  });
  origin = `http://127.0.0.1:${await listenOnLoopback(server)}`;
  return { origin, starts: () => instances.size, close: () => closeServer(server) };
}
