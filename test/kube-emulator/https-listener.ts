/**
 * The emulator's socket: HTTPS on 127.0.0.1, an ephemeral port, a server certificate signed by a private CA whose PEM
 * plays the cluster CA (what a kubeconfig's certificate-authority-data carries), as on AKS where the API server's
 * certificate is issued by the cluster's own CA rather than being self-signed.
 */
import type http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { caIssuedCertificate } from "../support/index.js";

export interface WireRequest {
  method: string;
  /** Path and query as sent. */
  target: string;
  headers: Record<string, string>;
  body: string | undefined;
}

export interface WireResponse {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
  /** Destroy the socket instead of answering (an injected `drop` fault). */
  drop?: boolean;
}

export interface Listening {
  /** `https://127.0.0.1:<port>` */
  server: string;
  /** PEM of the CA that signed the server certificate: the cluster CA. */
  caPem: string;
  port: number;
  close(): Promise<void>;
}

/** The API server's default request body limit. */
export const MAX_REQUEST_BYTES = 3 * 1024 * 1024;

export async function listenHttps(handle: (request: WireRequest) => Promise<WireResponse>, host = "127.0.0.1"): Promise<Listening> {
  const certificates = await caIssuedCertificate();
  const server = https.createServer({ cert: certificates.cert, key: certificates.key }, (req, res) => {
    void serve(handle, req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;
  return {
    server: `https://${host}:${port}`,
    caPem: certificates.ca,
    port,
    close: () =>
      (closing ??= new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        // Keep-alive sockets of a client's agent would otherwise hold close() open.
        server.closeAllConnections();
      })),
  };
}

async function serve(handle: (request: WireRequest) => Promise<WireResponse>, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  try {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > MAX_REQUEST_BYTES) tooLarge = true;
      else chunks.push(chunk as Buffer);
    }
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers)) if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(", ") : value;
    const response = tooLarge
      ? {
          status: 413,
          body: {
            kind: "Status",
            apiVersion: "v1",
            metadata: {},
            status: "Failure",
            message: "Request entity too large: limit is 3145728",
            reason: "RequestEntityTooLarge",
            code: 413,
          },
        }
      : await handle({
          method: req.method ?? "GET",
          target: req.url ?? "/",
          headers,
          body: chunks.length > 0 ? Buffer.concat(chunks).toString("utf8") : undefined,
        });
    if ("drop" in response && response.drop) {
      req.socket.destroy();
      return;
    }
    const text = response.body === undefined ? "" : JSON.stringify(response.body);
    res.writeHead(response.status, {
      "content-type": "application/json",
      ...("headers" in response ? response.headers : {}),
      "content-length": String(Buffer.byteLength(text)),
    });
    res.end(text);
  } catch (error) {
    // An emulator bug, not an emulated API failure: a 500 whose message shows in the test output.
    const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
    if (!res.headersSent) res.writeHead(500, { "content-type": "application/json" });
    res.end(
      JSON.stringify({
        kind: "Status",
        apiVersion: "v1",
        metadata: {},
        status: "Failure",
        message: `emulator bug: ${message}`,
        reason: "InternalError",
        code: 500,
      }),
    );
  }
}
