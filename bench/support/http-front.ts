/**
 * The function app over real HTTP on 127.0.0.1 (ephemeral port): each request is read, handed to the Functions host
 * stand-in's router exactly as `app.call` does, and its response written back. Lets a benchmark measure the HTTP
 * route the way a node calls it, with sockets, keep-alive and concurrency.
 */
import { createServer } from "node:http";
import type { FunctionsHost } from "../../test/functions-host/index.js";
import { closeServer, flatHeaders, listenOnLoopback, readBody } from "../../test/support/index.js";

const MAX_BODY = 1024 * 1024;

export interface HttpFront {
  origin: string;
  close(): Promise<void>;
}

export async function serveOverHttp(host: FunctionsHost): Promise<HttpFront> {
  const server = createServer((req, res) => {
    void (async () => {
      try {
        const body = await readBody(req, MAX_BODY);
        if (body === undefined) throw new Error("request body too large");
        const result = await host.handleHttp({ method: req.method ?? "GET", url: req.url ?? "/", headers: flatHeaders(req), body: body.toString("utf8") });
        res.writeHead(result.status, result.headers);
        res.end(result.body);
      } catch (error) {
        res.writeHead(500, { "content-type": "text/plain" });
        res.end(error instanceof Error ? error.message : String(error));
      }
    })();
  });
  const port = await listenOnLoopback(server);
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () => closeServer(server),
  };
}
