/**
 * An Event Grid topic's publishing endpoint, for the real `@azure/eventgrid` publisher client in the CloudEvent
 * schema: HTTPS on 127.0.0.1 (the test CA), `POST /api/events?api-version=…`, a bearer token for the audience
 * `https://eventgrid.azure.net`, and a body in the CloudEvents JSON batch format (`application/cloudevents-batch+json`,
 * a JSON array of structured-mode events, each with the required attributes `specversion` 1.0, `id`, `source`,
 * `type`). Accepted batches answer 200 with an empty body, as Event Grid does; everything it received is recorded.
 *
 * Sources: CloudEvents 1.0 spec (json-format.md §4 "JSON Batch Format", spec.md "Required Attributes"); Event Grid
 * "Post to custom topic for Azure Event Grid" (REST: 200 on success, 400 on a malformed event, 401 without a valid
 * token, 413 over 1 MB).
 */
import type { ServerResponse } from "node:http";
import { createServer, type Server } from "node:https";
import { caIssuedCertificate, closeServer, listenOnLoopback, readBody } from "../support/index.js";

/** Event Grid's limit on one publish request. */
export const MAX_BATCH_BYTES = 1024 * 1024;
export const EVENTGRID_AUDIENCE = "https://eventgrid.azure.net";

export interface ReceivedCloudEvent {
  specversion: string;
  id: string;
  source: string;
  type: string;
  [attribute: string]: unknown;
}

export interface Delivery {
  contentType: string;
  apiVersion: string | null;
  /** The caller's object id, from its bearer token. */
  principalId: string;
  events: ReceivedCloudEvent[];
}

export interface EventGridReceiver {
  /** The topic endpoint to give the publisher client: `https://127.0.0.1:<port>/api/events`. */
  endpoint: string;
  /** The CA that issued the listener's certificate. */
  ca: string;
  readonly deliveries: Delivery[];
  /** Every event received, in order (repeats included). */
  events(): ReceivedCloudEvent[];
  /** Called for each accepted event (the sandbox prints them). */
  onEvent?: (event: ReceivedCloudEvent) => void;
  /**
   * Refuses the next `times` publish requests that would have been accepted with this error (recording nothing), as the
   * topic does when the caller's role assignment has not reached it yet (403) or it is unavailable (503).
   */
  refuseNext(times: number, error: { status: number; code: string; message: string }): void;
  close(): Promise<void>;
}

const REQUIRED = ["specversion", "id", "source", "type"] as const;

export async function startEventGridReceiver(): Promise<EventGridReceiver> {
  const tls = await caIssuedCertificate();
  const deliveries: Delivery[] = [];
  let refusals = { left: 0, error: { status: 503, code: "ServiceUnavailable", message: "" } };
  const receiver: EventGridReceiver = {
    endpoint: "",
    ca: tls.ca,
    deliveries,
    events: () => deliveries.flatMap((d) => d.events),
    refuseNext: (times, error) => {
      refusals = { left: times, error };
    },
    close: () => closeServer(server),
  };
  const answer = (res: ServerResponse, status: number, code?: string, message?: string) =>
    res.writeHead(status, code ? { "content-type": "application/json" } : {}).end(code ? JSON.stringify({ error: { code, message } }) : undefined);
  const server: Server = createServer({ cert: tls.cert, key: tls.key }, (req, res) => {
    void (async () => {
      const url = new URL(req.url ?? "/", "https://127.0.0.1");
      if (req.method !== "POST" || url.pathname !== "/api/events") return answer(res, 404, "NotFound", "POST /api/events");
      const principalId = principalOf(req.headers.authorization);
      if (!principalId) return answer(res, 401, "Unauthorized", `a bearer token for ${EVENTGRID_AUDIENCE} is required`);
      const body = await readBody(req, MAX_BATCH_BYTES);
      if (body === undefined) return answer(res, 413, "RequestEntityTooLarge", `over ${MAX_BATCH_BYTES} bytes`);
      const contentType = req.headers["content-type"] ?? "";
      if (!/^application\/cloudevents-batch\+json(\s*;.*)?$/i.test(contentType))
        return answer(res, 400, "BadRequest", `a batch of CloudEvents must be application/cloudevents-batch+json, got '${contentType}'`);
      let parsed: unknown;
      try {
        parsed = JSON.parse(body.toString("utf8"));
      } catch {
        return answer(res, 400, "BadRequest", "the body is not JSON");
      }
      if (!Array.isArray(parsed)) return answer(res, 400, "BadRequest", "a CloudEvents batch is a JSON array");
      for (const e of parsed as Record<string, unknown>[]) {
        const missing = REQUIRED.filter((a) => typeof e?.[a] !== "string" || e[a] === "");
        if (missing.length) return answer(res, 400, "BadRequest", `event lacks required attribute(s): ${missing.join(", ")}`);
        if (e.specversion !== "1.0") return answer(res, 400, "BadRequest", `specversion must be 1.0, got ${String(e.specversion)}`);
      }
      const events = parsed as ReceivedCloudEvent[];
      if (refusals.left > 0) {
        refusals.left--;
        return answer(res, refusals.error.status, refusals.error.code, refusals.error.message);
      }
      deliveries.push({ contentType, apiVersion: url.searchParams.get("api-version"), principalId, events });
      for (const e of events) receiver.onEvent?.(e);
      answer(res, 200);
    })().catch((error: unknown) => answer(res, 500, "InternalServerError", error instanceof Error ? error.message : String(error)));
  });
  const port = await listenOnLoopback(server);
  receiver.endpoint = `https://127.0.0.1:${port}/api/events`;
  return receiver;
}

/** The object id in a bearer JWT whose audience is Event Grid's (signature not checked: a stand-in for Entra). */
function principalOf(authorization: string | undefined): string | undefined {
  const token = /^Bearer (\S+)$/.exec(authorization ?? "")?.[1];
  const payload = token?.split(".")[1];
  if (!payload) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as { aud?: string; oid?: string; exp?: number };
    if (claims.aud?.replace(/\/+$/, "") !== EVENTGRID_AUDIENCE) return undefined;
    if (claims.exp !== undefined && claims.exp * 1000 < Date.now()) return undefined;
    return claims.oid;
  } catch {
    return undefined;
  }
}
