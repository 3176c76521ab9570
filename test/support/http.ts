/**
 * The plumbing every loopback HTTP(S) stand-in repeats: listen on 127.0.0.1 (an ephemeral port unless told), close
 * without waiting for clients' keep-alive sockets, read a request body with a bound, and flatten request headers.
 */
import type { IncomingMessage } from "node:http";
import type { AddressInfo, Server } from "node:net";

/** Listens on `host` (default 127.0.0.1) and `port` (default 0: any free port); resolves to the port bound. */
export async function listenOnLoopback(server: Server, options: { port?: number; host?: string } = {}): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  return (server.address() as AddressInfo).port;
}

/** Closes the server, cutting idle and active connections first so a client's keep-alive agent cannot hold it open. */
export function closeServer(server: { close(callback?: (error?: Error) => void): unknown; closeAllConnections(): void }): Promise<void> {
  return new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
}

/** The whole request body; with a `limit`, undefined once it passes that many bytes (the rest is left unread). */
export function readBody(req: IncomingMessage): Promise<Buffer>;
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer | undefined>;
export async function readBody(req: IncomingMessage, limit = Number.POSITIVE_INFINITY): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** Request headers as one string each: repeated headers joined with ", " as HTTP allows. */
export function flatHeaders(req: IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(", ") : value;
  return headers;
}
