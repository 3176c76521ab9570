/**
 * One HTTPS round trip to the API server: bearer token, JSON in and out, the cluster CA as the only trust anchor (a
 * public CA must not be able to impersonate the cluster), a whole-request deadline, and a cap on the response size.
 * No retries: the saga's durable retry policy owns them, and a retry hidden here would double its backoff.
 */
import https from "node:https";
import { inSpan, SpanKind } from "../../observability/tracing.js";
import { KubeTimeoutError } from "./kube-api-error.js";
import type { KubeTarget } from "./kube-target.js";

export interface KubeResponse {
  status: number;
  /** Parsed JSON, raw text when the body is not JSON, undefined when empty. */
  body: unknown;
}

export interface RequestOptions {
  query?: Record<string, string | undefined>;
  body?: unknown;
}

/** Lists of a few thousand Secrets stay far below this; anything larger is not an API server we should trust. */
const MAX_RESPONSE_BYTES = 32 * 1024 * 1024;
const IDLE_SOCKET_MS = 15_000;
const USER_AGENT = "flexnode-onboarding/0.1 (kube-client)";

export class KubeTransport {
  private readonly agent: https.Agent;
  private readonly origin: string;
  private readonly basePath: string;

  constructor(
    private readonly target: KubeTarget,
    private readonly timeoutMs: number,
  ) {
    const url = new URL(target.server);
    if (url.protocol !== "https:") throw new TypeError(`the API server URL must be https, got ${url.protocol}`);
    this.origin = url.origin;
    // Servers behind a path-routing proxy (e.g. `https://host/k8s/clusters/c-1`) keep their prefix.
    this.basePath = url.pathname.replace(/\/+$/, "");
    // A few keep-alive sockets spare the TLS handshake between the handful of calls one activity makes. Free sockets
    // are unref'd by Node (an idle client never holds the process open) and dropped after IDLE_SOCKET_MS, so clients
    // built per activity and never closed do not accumulate connections to the API server.
    this.agent = new https.Agent({ keepAlive: true, maxSockets: 4, timeout: IDLE_SOCKET_MS, ca: target.caPem });
  }

  /** A client span each (no SDK makes one for this client): the method and the path without its query, never a header. */
  request(method: string, path: string, options: RequestOptions = {}): Promise<KubeResponse> {
    const attributes = { "http.request.method": method, "url.path": path, "server.address": new URL(this.origin).hostname };
    return inSpan(`kube ${method}`, { kind: SpanKind.CLIENT, attributes }, async (span) => {
      const response = await this.send(method, path, options);
      span.setAttribute("http.response.status_code", response.status);
      return response;
    });
  }

  private send(method: string, path: string, options: RequestOptions): Promise<KubeResponse> {
    const url = new URL(`${this.origin}${this.basePath}${path}`);
    for (const [key, value] of Object.entries(options.query ?? {})) if (value !== undefined) url.searchParams.set(key, value);
    const payload = options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body), "utf8");
    const headers: Record<string, string> = {
      authorization: `Bearer ${this.target.token}`,
      accept: "application/json",
      "user-agent": USER_AGENT,
    };
    if (payload) {
      headers["content-type"] = "application/json";
      headers["content-length"] = String(payload.length);
    }

    return new Promise<KubeResponse>((resolve, reject) => {
      const req = https.request(url, { method, agent: this.agent, headers }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_RESPONSE_BYTES) {
            req.destroy(new RangeError(`${method} ${path}: response larger than ${MAX_RESPONSE_BYTES} bytes`));
            return;
          }
          chunks.push(chunk);
        });
        res.on("end", () => {
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, body: parseBody(Buffer.concat(chunks).toString("utf8")) });
        });
        res.on("error", (error) => {
          clearTimeout(timer);
          reject(error);
        });
      });
      const timer = setTimeout(() => {
        req.destroy(new KubeTimeoutError(`${method} ${path}: no complete answer within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      req.on("error", (error) => {
        clearTimeout(timer);
        reject(error);
      });
      req.end(payload);
    });
  }

  /** Drops pooled sockets; requests after this still work on fresh ones. */
  close(): void {
    this.agent.destroy();
  }
}

function parseBody(text: string): unknown {
  if (text.length === 0) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}
