/**
 * Entry point of the host front's process (host-front.ts forks it): listens on 127.0.0.1, forwards each request to
 * its parent over the IPC channel and writes back the answer with the same id. Says its port first, as child-rpc.ts's
 * `{ ready }`; ends when its parent goes away.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { flatHeaders, listenOnLoopback, readBody } from "../../test/support/index.js";
import type { FrontRequest, FrontResponse } from "./host-front.js";

/** The Functions host's own default limit on a request body (100 MB) is far above anything the service accepts. */
const MAX_BODY = 1024 * 1024;

if (!process.send) throw new Error("host-front-process.ts runs as a forked child only");
const waiting = new Map<number, ServerResponse>();
let next = 0;
const server = createServer((req, res) => {
  // A client that goes away mid-body fails the read: its connection is dropped, and the front serves on.
  forward(req, res).catch(() => res.destroy());
});
async function forward(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const body = await readBody(req, MAX_BODY);
  if (body === undefined) {
    res.writeHead(413, { "content-type": "text/plain" });
    res.end("request body too large");
    return;
  }
  const id = ++next;
  waiting.set(id, res);
  const request: FrontRequest = { id, method: req.method ?? "GET", url: req.url ?? "/", headers: flatHeaders(req), body: body.toString("utf8") };
  process.send!(request);
}
process.on("message", (response: FrontResponse) => {
  const res = waiting.get(response.id);
  if (!res) return;
  waiting.delete(response.id);
  res.writeHead(response.status, response.headers);
  res.end(response.body);
});
process.on("disconnect", () => process.exit(0));
process.send({ ready: { port: await listenOnLoopback(server) } });
