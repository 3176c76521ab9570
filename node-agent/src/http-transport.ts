/**
 * The agent's HTTP: node:https with the system trust store plus an optional extra CA (a private PKI in front of the
 * service, the sandbox's self-signed front). Global fetch cannot take a CA per request in Node 20 without undici as
 * a dependency; node:https can, and the agent needs nothing fetch adds.
 */
import * as http from "node:http";
import * as https from "node:https";
import { rootCertificates } from "node:tls";

export interface HttpRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: string;
}

export interface HttpResponse {
  status: number;
  /** Lower-case names. */
  headers: Record<string, string>;
  body: string;
}

/** Sends one request; rejects only when no HTTP response arrived (DNS, connect, TLS, timeout). */
export type HttpTransport = (request: HttpRequest) => Promise<HttpResponse>;

export class TransportError extends Error {
  readonly code = "transport_failed";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "TransportError";
  }
}

/** The server's certificate does not verify: retrying will not help, trusting its CA (caFile) will. */
export class UntrustedServerError extends Error {
  readonly code = "untrusted_server";
  constructor(host: string, reason: string, options?: { cause?: unknown }) {
    super(`the TLS certificate of ${host} is not trusted (${reason}); if the service uses a private CA, set caFile in /etc/flexnode/agent.json`, options);
    this.name = "UntrustedServerError";
  }
}

const CERTIFICATE_ERRORS = new Set([
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);

export interface TransportOptions {
  /** Extra PEM CA certificates, trusted in addition to the system's. */
  ca?: string;
  timeoutMs?: number;
  /** Responses larger than this are refused (the service's answers are a few kB). */
  maxResponseBytes?: number;
}

export function nodeHttpTransport(options: TransportOptions = {}): HttpTransport {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const maxBytes = options.maxResponseBytes ?? 1024 * 1024;
  const ca = options.ca === undefined ? undefined : [...rootCertificates, options.ca];
  // One keep-alive agent per transport: the mailbox refresh and secret fetches reuse the TLS session.
  const httpsAgent = new https.Agent({ keepAlive: true, maxSockets: 4, ...(ca ? { ca } : {}) });
  const httpAgent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  return (request) =>
    new Promise<HttpResponse>((resolve, reject) => {
      const url = new URL(request.url);
      const secure = url.protocol === "https:";
      const body = request.body === undefined ? undefined : Buffer.from(request.body, "utf8");
      const headers: Record<string, string> = { ...request.headers };
      if (body !== undefined) headers["content-length"] = String(body.length);
      const req = (secure ? https : http).request(
        url,
        { method: request.method, headers, agent: secure ? httpsAgent : httpAgent, timeout: timeoutMs },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on("data", (chunk: Buffer) => {
            size += chunk.length;
            if (size > maxBytes) {
              res.destroy(new TransportError(`response from ${url.host} exceeds ${maxBytes} bytes`));
              return;
            }
            chunks.push(chunk);
          });
          res.on("error", (cause) =>
            reject(cause instanceof TransportError ? cause : new TransportError(`reading the response from ${url.host} failed: ${cause.message}`, { cause })),
          );
          res.on("end", () => {
            const out: Record<string, string> = {};
            for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) out[k.toLowerCase()] = Array.isArray(v) ? v.join(", ") : v;
            resolve({ status: res.statusCode ?? 0, headers: out, body: Buffer.concat(chunks).toString("utf8") });
          });
        },
      );
      req.on("timeout", () => req.destroy(new TransportError(`no answer from ${url.host} within ${timeoutMs} ms`)));
      req.on("error", (cause: NodeJS.ErrnoException) => {
        if (cause instanceof TransportError) reject(cause);
        else if (cause.code !== undefined && CERTIFICATE_ERRORS.has(cause.code)) reject(new UntrustedServerError(url.host, cause.code, { cause }));
        else reject(new TransportError(`${request.method} ${url.origin}${url.pathname} failed: ${cause.message}`, { cause }));
      });
      req.end(body);
    });
}
