/**
 * The function app over real HTTP on 127.0.0.1, for the agent's HTTP client: each request goes byte for byte to the
 * Functions host stand-in (the same router and handlers `test/function-app/app.ts` drives), so signatures, digests and
 * problem+json answers are the service's own. `intercept` lets a test answer a request itself first (a 429 from a
 * front door, a dropped connection) and records what reached the wire.
 */
import { createServer, type RequestListener, type Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { TestApp } from "../../../test/function-app/index.js";
import { closeServer, flatHeaders, listenOnLoopback, readBody } from "../../../test/support/index.js";

export interface SeenRequest {
  method: string;
  /** Path and query exactly as sent. */
  url: string;
  headers: Record<string, string>;
  body: string;
}

export type Interception = { status: number; headers?: Record<string, string>; body?: string } | "drop" | undefined;

export interface HttpFront {
  url: string;
  seen: SeenRequest[];
  /** Called for each request before the app; return an answer to short-circuit it. */
  intercept: ((request: SeenRequest, index: number) => Interception) | undefined;
  close(): Promise<void>;
}

/** `tls`: serve HTTPS with this certificate (the agent must then be given its CA). */
export async function startHttpFront(app: TestApp, options: { tls?: { cert: string; key: string } } = {}): Promise<HttpFront> {
  const front: HttpFront = { url: "", seen: [], intercept: undefined, close: async () => undefined };
  const listener: RequestListener = (req, res) => {
    void (async () => {
      const body = await readBody(req);
      const headers = flatHeaders(req);
      const seen: SeenRequest = { method: req.method ?? "GET", url: req.url ?? "/", headers, body: body.toString("utf8") };
      const index = front.seen.push(seen) - 1;
      const answer = front.intercept?.(seen, index);
      if (answer === "drop") {
        req.socket.destroy();
        return;
      }
      if (answer) {
        res.writeHead(answer.status, answer.headers ?? {}).end(answer.body ?? "");
        return;
      }
      const result = await app.host.handleHttp({ method: seen.method, url: seen.url, headers, ...(body.length > 0 ? { body: new Uint8Array(body) } : {}) });
      res.writeHead(result.status, result.headers).end(result.body);
    })().catch((error: unknown) => {
      res.writeHead(500, { "content-type": "text/plain" }).end(String(error));
    });
  };
  const server: Server = options.tls ? createHttpsServer(options.tls, listener) : createServer(listener);
  front.url = `${options.tls ? "https" : "http"}://127.0.0.1:${await listenOnLoopback(server)}`;
  front.close = () => closeServer(server);
  return front;
}
