/**
 * Starts an orchestration through the Durable extension's local endpoint (the binding's `rpcBaseUrl`), with the request
 * durable-functions' `DurableClient.startNew` makes: `POST orchestrators/{name}/{instanceId}`, the input as a JSON body,
 * the active trace context as W3C headers; 200–202 is a start. Over node:http instead of the client's axios, because
 * the start is on every enrolment's path and axios is its dearest part: a start alone costs 0.30 ms of CPU through
 * the DurableClient and 0.085 ms this way, and in process at concurrency 8 the service's CPU per enrolment was 4.0 ms
 * against 4.9 through axios (medians of six alternated rounds of 400 enrolments, 2026-12-07). In
 * bench/enrol-throughput.ts's headline cell (concurrency 32, HTTP and the Durable endpoint in processes of their own)
 * the gain is within the machine's noise: medians of 3.64 against 3.96 ms over nine trials each way, alternated. The
 * other Durable calls (status, terminate, raise, purge) are rare and stay with the DurableClient.
 */
import http from "node:http";
import https from "node:https";
import { context, propagation } from "@opentelemetry/api";

export type StartOrchestration = (name: string, options: { instanceId: string; input: unknown }) => Promise<void>;

/** The extension refused a start: an unknown orchestrator (400), an instance that runs under that id (409), or its own failure. */
export class OrchestrationStartError extends Error {
  constructor(
    readonly status: number,
    readonly orchestration: string,
    readonly instanceId: string,
    detail: string,
  ) {
    super(`starting ${orchestration} as instance '${instanceId}' failed: HTTP ${status}${detail ? `: ${detail}` : ""}`);
    this.name = "OrchestrationStartError";
  }
}

/** The extension answers a start with its management URLs; anything much larger is not the extension. */
const MAX_RESPONSE_BYTES = 64 * 1024;
/** What of a refusal's body goes into the error: the extension's message, not a page of HTML. */
const MAX_DETAIL_CHARS = 500;

/**
 * A starter for the endpoint at `rpcBaseUrl`, with one keep-alive agent for all its starts (the endpoint is the host's,
 * on the same machine: a connection per start would cost a handshake each).
 */
export function httpOrchestrationStarter(rpcBaseUrl: string): StartOrchestration {
  const base = new URL(rpcBaseUrl);
  const transport = base.protocol === "https:" ? https : http;
  const agent = new transport.Agent({ keepAlive: true });
  return (name, { instanceId, input }) => {
    const url = new URL(`orchestrators/${encodeURIComponent(name)}/${encodeURIComponent(instanceId)}`, base);
    const body = input === undefined ? "" : JSON.stringify(input);
    const headers: Record<string, string> = { "content-type": "application/json", "content-length": String(Buffer.byteLength(body)) };
    propagation.inject(context.active(), headers);
    return new Promise<void>((resolve, reject) => {
      const req = transport.request(url, { method: "POST", agent, headers }, (res) => {
        const status = res.statusCode ?? 0;
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_RESPONSE_BYTES) req.destroy(new RangeError(`the start of '${instanceId}' answered more than ${MAX_RESPONSE_BYTES} bytes`));
          else chunks.push(chunk);
        });
        res.on("end", () => {
          if (status >= 200 && status <= 202) return resolve();
          const detail = Buffer.concat(chunks).toString("utf8").slice(0, MAX_DETAIL_CHARS);
          reject(new OrchestrationStartError(status, name, instanceId, detail));
        });
        res.on("error", reject);
      });
      req.on("error", reject);
      req.end(body);
    });
  };
}
