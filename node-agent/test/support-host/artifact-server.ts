/**
 * A real HTTPS artifact mirror for the executors' tests: a `selfsigned` CA signs its certificate (the agent trusts the
 * CA through `deps.ca`), it honours Range requests, and it can throttle its stream or cut a response mid-way so
 * resumption and kill -9 are exercised honestly. Loopback only, ephemeral port, unref'd so it never holds a test up.
 */
import { createServer, type Server } from "node:https";
import { generate } from "selfsigned";

export interface ServedRequest {
  path: string;
  range?: string;
  status: number;
}

export interface ArtifactServer {
  ca: string;
  origin: string;
  url(name: string): string;
  put(name: string, body: Uint8Array): void;
  /** The next response for `name` sends its full headers, then only `afterBytes` bytes before the connection drops. */
  cutNext(name: string, afterBytes: number): void;
  requests: ServedRequest[];
  close(): Promise<void>;
}

export interface ArtifactServerOptions {
  /** Stream at about this rate (default: as fast as possible). */
  bytesPerSecond?: number;
}

let caPending: Promise<{ ca: string; cert: string; key: string }> | undefined;

/** One CA and loopback server certificate per process: key generation is the slow part. */
function certificates() {
  caPending ??= (async () => {
    const ca = await generate([{ name: "commonName", value: "flexnode test mirror CA" }], {
      keyType: "ec",
      curve: "P-256",
      algorithm: "sha256",
      extensions: [
        { name: "basicConstraints", cA: true, critical: true },
        { name: "keyUsage", keyCertSign: true, cRLSign: true, critical: true },
      ],
    });
    const server = await generate([{ name: "commonName", value: "localhost" }], {
      keyType: "ec",
      curve: "P-256",
      algorithm: "sha256",
      ca: { key: ca.private, cert: ca.cert },
      extensions: [
        { name: "basicConstraints", cA: false },
        { name: "keyUsage", digitalSignature: true, keyEncipherment: true },
        { name: "extKeyUsage", serverAuth: true },
        { name: "subjectAltName", altNames: [{ type: 2, value: "localhost" }, { type: 7, ip: "127.0.0.1" }] },
      ],
    });
    return { ca: ca.cert, cert: server.cert, key: server.private };
  })();
  return caPending;
}

export async function startArtifactServer(options: ArtifactServerOptions = {}): Promise<ArtifactServer> {
  const { ca, cert, key } = await certificates();
  const bodies = new Map<string, Uint8Array>();
  const cuts = new Map<string, number>();
  const requests: ServedRequest[] = [];
  const chunk = 16 * 1024;
  const server: Server = createServer({ cert, key }, (req, res) => {
    const name = decodeURIComponent((req.url ?? "/").slice(1).split("?")[0] ?? "");
    const body = bodies.get(name);
    const range = req.headers.range;
    const record = (status: number) => requests.push({ path: name, ...(range ? { range } : {}), status });
    if (!body) {
      record(404);
      res.writeHead(404).end();
      return;
    }
    let start = 0;
    if (range) {
      const m = /^bytes=(\d+)-$/.exec(range);
      start = m ? Number(m[1]) : 0;
      if (start >= body.length) {
        record(416);
        res.writeHead(416, { "content-range": `bytes */${body.length}` }).end();
        return;
      }
    }
    const status = range ? 206 : 200;
    record(status);
    res.writeHead(status, {
      "content-length": String(body.length - start),
      "content-type": "application/octet-stream",
      ...(range ? { "content-range": `bytes ${start}-${body.length - 1}/${body.length}` } : {}),
    });
    const cut = cuts.get(name);
    cuts.delete(name);
    let at = start;
    let sent = 0;
    const pump = () => {
      if (res.destroyed) return;
      if (at >= body.length) {
        res.end();
        return;
      }
      let n = Math.min(chunk, body.length - at);
      if (cut !== undefined) n = Math.min(n, cut - sent);
      if (n <= 0) {
        res.socket?.destroy();
        return;
      }
      res.write(body.subarray(at, at + n));
      at += n;
      sent += n;
      const delay = options.bytesPerSecond ? (n / options.bytesPerSecond) * 1000 : 0;
      setTimeout(pump, delay).unref();
    };
    pump();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  server.unref();
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no port");
  const origin = `https://127.0.0.1:${address.port}`;
  return {
    ca,
    origin,
    url: (name) => `${origin}/${encodeURIComponent(name)}`,
    put: (name, body) => void bodies.set(name, body),
    cutNext: (name, afterBytes) => void cuts.set(name, afterBytes),
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
