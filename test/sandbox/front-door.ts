/**
 * The function app served over real HTTP on 127.0.0.1, as `func start` would serve it: every HTTP function under the
 * `/api` prefix with the host's routing (the host stand-in's `handleHttp`). In front of it sits a stand-in for App
 * Service authentication ("Easy Auth"), because the admin API trusts only the principal header that platform sets:
 * any `x-ms-client-principal*` header a caller sends is stripped, and a request bearing the sandbox's admin token
 * (random per run, printed at start) gets the header of a sandbox admin with the FlexNode.Admin app role instead.
 */
import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import { ADMIN_ROLE, clientPrincipalHeader } from "../../functions/http/principal.js";
import { DEPLOYED_REQUEST_BODY_SIZE_LIMIT, type FunctionsHost } from "../functions-host/index.js";
import { closeServer, listenOnLoopback, readBody } from "../support/index.js";

export const SANDBOX_ADMIN = { name: "sandbox-admin@flexnode.local", id: "5a4db0c0-0000-4000-8000-00000000ad01" };

export interface FrontDoor {
  /** `http://127.0.0.1:<port>` */
  url: string;
  port: number;
  /** Send `Authorization: Bearer <adminToken>` to act as the sandbox admin. */
  adminToken: string;
  /** Requests served, for the summary. */
  readonly requests: { method: string; path: string; status: number }[];
  close(): Promise<void>;
}

export async function startFrontDoor(options: { host: () => FunctionsHost | undefined; port?: number }): Promise<FrontDoor> {
  const adminToken = randomBytes(24).toString("base64url");
  const principal = clientPrincipalHeader({ name: SANDBOX_ADMIN.name, id: SANDBOX_ADMIN.id, roles: [ADMIN_ROLE] });
  const requests: FrontDoor["requests"] = [];
  let origin = "";
  const server: Server = createServer((req, res) => {
    void (async () => {
      const path = (req.url ?? "/").split("?")[0]!;
      try {
        // The host's limit (FUNCTIONS_REQUEST_BODY_SIZE_LIMIT): bigger than any route accepts (they answer 413 past
        // 64 KiB themselves); past it the host answers a bare 413, and this bounds memory.
        const body = await readBody(req, options.host()?.maxRequestBodyBytes ?? DEPLOYED_REQUEST_BODY_SIZE_LIMIT);
        if (body === undefined) {
          res.writeHead(413).end();
          requests.push({ method: req.method ?? "GET", path, status: 413 });
          return;
        }
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(req.headers)) {
          if (v === undefined || k.startsWith("x-ms-client-principal")) continue;
          headers[k] = Array.isArray(v) ? v.join(", ") : v;
        }
        if (headers.authorization === `Bearer ${adminToken}`) {
          headers["x-ms-client-principal"] = principal;
          headers["x-ms-client-principal-name"] = SANDBOX_ADMIN.name;
          headers["x-ms-client-principal-id"] = SANDBOX_ADMIN.id;
        }
        const host = options.host();
        if (!host) {
          res.writeHead(503, { "content-type": "text/plain", "retry-after": "1" }).end("the function app is starting\n");
          requests.push({ method: req.method ?? "GET", path, status: 503 });
          return;
        }
        // The host fills the body only when Content-Length > 0: a chunked request arrives with none
        // (azure-functions-host#4926). Node's parser has already refused a malformed Content-Length (400).
        const declared = Number(req.headers["content-length"] ?? "0");
        const result = await host.handleHttp({
          method: req.method ?? "GET",
          url: `${origin}${req.url ?? "/"}`,
          headers,
          body: declared > 0 && body.length > 0 ? new Uint8Array(body) : undefined,
        });
        requests.push({ method: req.method ?? "GET", path, status: result.status });
        res.writeHead(result.status, result.headers).end(result.body);
      } catch (error) {
        requests.push({ method: req.method ?? "GET", path, status: 500 });
        if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
        res.end(`sandbox front door: ${error instanceof Error ? error.message : String(error)}\n`);
      }
    })();
  });
  const port = await listenOnLoopback(server, { port: options.port ?? 0 });
  origin = `http://127.0.0.1:${port}`;
  return {
    url: origin,
    port,
    adminToken,
    requests,
    close: () => closeServer(server),
  };
}
