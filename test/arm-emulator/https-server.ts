/**
 * The socket transport: a real HTTPS (or plain HTTP) server on 127.0.0.1 with an ephemeral port. SDK clients reach it
 * with `{ endpoint, tlsOptions: { ca } }`; the bearer-token policy refuses plain http, hence TLS by default.
 */
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { selfSignedCertificate } from "../support/index.js";
import { serialiseBody, type EmulatorRequest, type EmulatorResponse } from "./wire.js";

export interface ListenOptions {
  /** Serve HTTPS with a self-signed certificate (default). Plain HTTP only suits callers without bearer auth. */
  tls?: boolean;
  host?: string;
  port?: number;
}

export interface ListeningEmulator {
  /** e.g. `https://127.0.0.1:54321` */
  endpoint: string;
  /** PEM of the certificate to trust; undefined for plain HTTP. */
  ca: string | undefined;
  port: number;
  /** Options to spread into an Azure SDK client's options. */
  clientOptions(): { endpoint: string; tlsOptions?: { ca: string } };
  close(): Promise<void>;
}

type Handle = (request: EmulatorRequest) => Promise<EmulatorResponse>;

export async function listen(handle: Handle, options: ListenOptions = {}): Promise<ListeningEmulator> {
  const tls = options.tls ?? true;
  const host = options.host ?? "127.0.0.1";
  const certificate = tls ? await selfSignedCertificate() : undefined;
  const listener = (req: http.IncomingMessage, res: http.ServerResponse) => {
    void serve(handle, req, res, tls ? "https" : "http");
  };
  const server = certificate ? https.createServer({ cert: certificate.cert, key: certificate.key }, listener) : http.createServer(listener);

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const endpoint = `${tls ? "https" : "http"}://${host}:${port}`;
  const ca = certificate?.cert;
  return {
    endpoint,
    ca,
    port,
    clientOptions: () => (ca === undefined ? { endpoint } : { endpoint, tlsOptions: { ca } }),
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        // Keep-alive sockets from SDK agents would otherwise hold close() open.
        server.closeAllConnections();
      }),
  };
}

async function serve(handle: Handle, req: http.IncomingMessage, res: http.ServerResponse, scheme: string): Promise<void> {
  try {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = chunks.length === 0 ? undefined : Buffer.concat(chunks).toString("utf8");
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(", ") : value;
    }
    const response = await handle({
      method: req.method ?? "GET",
      url: `${scheme}://${req.headers.host ?? "127.0.0.1"}${req.url ?? "/"}`,
      headers,
      body,
    });
    if (response.dropConnection) {
      req.socket.destroy();
      return;
    }
    const text = serialiseBody(response.body);
    res.writeHead(response.status, { ...response.headers, "content-length": String(Buffer.byteLength(text)) });
    res.end(text);
  } catch (error) {
    // An emulator bug, not an emulated ARM failure: answer 500 with the message so the test output shows it.
    const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
    if (!res.headersSent) res.writeHead(500, { "content-type": "application/json" });
    res.end(JSON.stringify({ error: { code: "EmulatorInternalError", message } }));
  }
}
