/**
 * The function app over real HTTP on 127.0.0.1 (ephemeral port): each request is read, handed to the Functions host
 * stand-in's router exactly as `app.call` does, and its response written back. Lets a benchmark measure the HTTP
 * route the way a node calls it, with sockets, keep-alive and concurrency.
 */
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import type { FunctionsHost } from "../../test/functions-host/host.js";

const MAX_BODY = 1024 * 1024;

export interface HttpFront {
  origin: string;
  close(): Promise<void>;
}

export async function serveOverHttp(host: FunctionsHost): Promise<HttpFront> {
  const server = createServer((req, res) => {
    void (async () => {
      try {
        const body = await readBody(req);
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string") headers[k] = v;
        const result = await host.handleHttp({ method: req.method ?? "GET", url: req.url ?? "/", headers, body });
        res.writeHead(result.status, result.headers);
        res.end(result.body);
      } catch (error) {
        res.writeHead(500, { "content-type": "text/plain" });
        res.end(error instanceof Error ? error.message : String(error));
      }
    })();
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new Error("request body too large");
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}
