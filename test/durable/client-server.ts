/**
 * The extension's HTTP management API on loopback, backed by a DurableSimulator, so the real `DurableClient`
 * (`df.getClient`) works unchanged: it is plain axios calls against the binding's `rpcBaseUrl`. The same handler
 * answers the public webhook paths (`/runtime/webhooks/durabletask/...`) that `statusQueryGetUri` and friends name.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { closeServer, listenOnLoopback, readBody as readRequestBody } from "../support/index.js";
import { InstanceExistsError, OrchestratorNotFoundError, isTerminal, type DurableSimulator, type RuntimeStatus } from "./simulator.js";

export interface DurableClientBinding {
  taskHubName: string;
  creationUrls: Record<string, string>;
  managementUrls: Record<string, string>;
  baseUrl: string;
  requiredQueryStringParameters: string;
  rpcBaseUrl: string;
}

export interface DurableClientServer {
  /** The JSON the extension binds to a `durableClient` input. */
  binding: DurableClientBinding;
  origin: string;
  close(): Promise<void>;
}

const MAX_BODY = 16 * 1024 * 1024;

/**
 * The JSON the extension binds to a `durableClient` input when its HTTP management API is at `origin`: the creation
 * and management URL templates (`INSTANCEID` and `{...}` placeholders as the extension writes them) under the public
 * webhook path, and `rpcBaseUrl`, which the durable-functions 3.x client actually calls.
 */
export function durableClientBinding(origin: string, taskHubName: string, code: string): DurableClientBinding {
  const query = `taskHub=${taskHubName}&connection=Storage&code=${code}`;
  const webhooks = `${origin}/runtime/webhooks/durabletask`;
  return {
    taskHubName,
    creationUrls: {
      createNewInstancePostUri: `${webhooks}/orchestrators/{functionName}[/{instanceId}]?code=${code}`,
      createAndWaitOnNewInstancePostUri: `${webhooks}/orchestrators/{functionName}[/{instanceId}]?timeout={timeoutInSeconds}&pollingInterval={intervalInSeconds}&code=${code}`,
    },
    managementUrls: {
      id: "INSTANCEID",
      statusQueryGetUri: `${webhooks}/instances/INSTANCEID?${query}`,
      sendEventPostUri: `${webhooks}/instances/INSTANCEID/raiseEvent/{eventName}?${query}`,
      terminatePostUri: `${webhooks}/instances/INSTANCEID/terminate?reason={text}&${query}`,
      rewindPostUri: `${webhooks}/instances/INSTANCEID/rewind?reason={text}&${query}`,
      purgeHistoryDeleteUri: `${webhooks}/instances/INSTANCEID?${query}`,
      restartPostUri: `${webhooks}/instances/INSTANCEID/restart?${query}`,
      suspendPostUri: `${webhooks}/instances/INSTANCEID/suspend?reason={text}&${query}`,
      resumePostUri: `${webhooks}/instances/INSTANCEID/resume?reason={text}&${query}`,
    },
    baseUrl: webhooks,
    requiredQueryStringParameters: `code=${code}`,
    rpcBaseUrl: `${origin}/durabletask/`,
  };
}

export async function startDurableClientServer(simulator: DurableSimulator): Promise<DurableClientServer> {
  const server = createServer((req, res) => {
    handle(simulator, req, res).catch((error: unknown) => send(res, 500, { message: error instanceof Error ? error.message : String(error) }));
  });
  // The host's endpoint (Kestrel) keeps an idle connection 130 s; node:http's 5 s let a client that reused an idle
  // keep-alive socket meet a reset on a busy machine (ECONNRESET in a 2,000-node fleet run), which the host would not.
  server.keepAliveTimeout = 130_000;
  const origin = `http://127.0.0.1:${await listenOnLoopback(server)}`;
  const binding = durableClientBinding(origin, simulator.taskHubName, "simulated");
  return {
    binding,
    origin,
    close: () => closeServer(server),
  };

  function managementPayload(id: string): Record<string, string> {
    const out: Record<string, string> = { id };
    for (const [k, v] of Object.entries(binding.managementUrls)) if (k !== "id") out[k] = v.replace("INSTANCEID", encodeURIComponent(id));
    return out;
  }

  async function handle(sim: DurableSimulator, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", origin);
    const path = url.pathname.replace(/^\/runtime\/webhooks\/durabletask\//, "/durabletask/");
    const body = await readBody(req);
    const method = req.method ?? "GET";
    let m: RegExpExecArray | null;

    if (method === "POST" && (m = /^\/durabletask\/orchestrators\/([^/]+)(?:\/([^/]+))?$/.exec(path))) {
      try {
        const id = sim.startNew(decodeURIComponent(m[1]!), { instanceId: m[2] && decodeURIComponent(m[2]), inputJson: body });
        return send(res, 202, managementPayload(id), { Location: managementPayload(id).statusQueryGetUri! });
      } catch (error) {
        if (error instanceof OrchestratorNotFoundError) return send(res, 400, { message: error.message });
        if (error instanceof InstanceExistsError) return send(res, 409, { message: error.message });
        throw error;
      }
    }
    if ((method === "GET" || method === "DELETE") && path === "/durabletask/instances/") {
      const statuses = url.searchParams.get("runtimeStatus")?.split(",").filter(Boolean) as RuntimeStatus[] | undefined;
      const from = url.searchParams.get("createdTimeFrom");
      const to = url.searchParams.get("createdTimeTo");
      const filter = { runtimeStatus: statuses, createdTimeFrom: from ? Date.parse(from) : undefined, createdTimeTo: to ? Date.parse(to) : undefined };
      if (method === "GET") return send(res, 200, sim.listStatus(filter));
      // The extension answers 404 when the filter matched nothing to purge.
      const deleted = sim.purgeWhere(filter);
      return deleted ? send(res, 200, { instancesDeleted: deleted }) : send(res, 404, { message: "No instances matched the purge filter." });
    }
    if ((m = /^\/durabletask\/instances\/([^/]+)$/.exec(path))) {
      const id = decodeURIComponent(m[1]!);
      if (method === "GET") {
        const status = sim.getStatus(id, {
          showHistory: url.searchParams.get("showHistory") === "true",
          showHistoryOutput: url.searchParams.get("showHistoryOutput") === "true",
          showInput: url.searchParams.get("showInput") !== "false",
        });
        if (!status) return send(res, 404, { message: `No instance with ID '${id}' found.` });
        return send(res, isTerminal(status.runtimeStatus) ? 200 : 202, status);
      }
      if (method === "DELETE") {
        const deleted = sim.purge(id);
        return deleted ? send(res, 200, { instancesDeleted: deleted }) : send(res, 404, { message: `No purgeable instance with ID '${id}' found.` });
      }
    }
    if (method === "POST" && (m = /^\/durabletask\/instances\/([^/]+)\/raiseEvent\/([^/]+)$/.exec(path))) {
      const outcome = sim.raiseEvent(decodeURIComponent(m[1]!), decodeURIComponent(m[2]!), body ? JSON.parse(body) : undefined);
      return send(res, outcome === "accepted" ? 202 : outcome === "gone" ? 410 : 404, undefined);
    }
    if (method === "POST" && (m = /^\/durabletask\/instances\/([^/]+)\/terminate$/.exec(path))) {
      const outcome = sim.terminate(decodeURIComponent(m[1]!), url.searchParams.get("reason") ?? "");
      return send(res, outcome === "accepted" ? 202 : outcome === "gone" ? 410 : 404, undefined);
    }
    if ((m = /^\/durabletask\/instances\/[^/]+\/(suspend|resume|rewind|restart)$/.exec(path))) {
      return send(res, 501, { message: `${m[1]} is not simulated` });
    }
    return send(res, 404, { message: `no route for ${method} ${url.pathname}` });
  }
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = body === undefined ? "" : JSON.stringify(body);
  res.writeHead(status, { ...(text ? { "content-type": "application/json; charset=utf-8" } : {}), ...headers });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const body = await readRequestBody(req, MAX_BODY);
  if (body === undefined) throw new Error("request body too large");
  return body.toString("utf8");
}
