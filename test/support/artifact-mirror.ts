/**
 * An HTTPS artifact mirror on 127.0.0.1 (ephemeral port), its certificate issued by the test CA (`ca` is what the
 * agent trusts): serves named bytes at `/<pathPrefix><name>` with GET and HEAD, `Range: bytes=N-` and `bytes=N-M`
 * (206, or 416 past the end), an ETag of the sha256 of what was put, and a request log. Failure injection for the
 * agent's downloads: `corrupt(name)` flips the last byte from now on (same length, wrong digest), `cutNext(name, n)`
 * drops the next response's connection after n bytes, and `bytesPerSecond` throttles every stream so a download can
 * be killed mid-way. The agent's executor tests and the local sandbox each wrap one.
 */
import { createHash } from "node:crypto";
import { createServer, type Server } from "node:https";
import { closeServer, listenOnLoopback } from "./http.js";
import { caIssuedCertificate } from "./tls.js";
import { byteRange } from "./byte-range.js";

export interface MirrorRequest {
  name: string;
  range: string | undefined;
  status: number;
  /** Body bytes sent (0 for HEAD and errors; what a cut response promised, not what got through). */
  bytes: number;
}

export interface ArtifactMirrorOptions {
  /** Artifacts are served at `/<pathPrefix><name>` (default ""). */
  pathPrefix?: string;
  /** Stream at about this rate (default: as fast as possible). */
  bytesPerSecond?: number;
  /** Let the process exit while the mirror listens (default: it holds the process open like any server). */
  unref?: boolean;
}

export interface ArtifactMirror {
  origin: string;
  /** PEM of the CA that issued the server certificate. */
  ca: string;
  url(name: string): string;
  /** The artifact name behind one of this mirror's URLs. */
  nameOf(url: string): string | undefined;
  put(name: string, body: Uint8Array): void;
  /** Serves `name` with its last byte flipped from now on. */
  corrupt(name: string): void;
  /** The next response for `name` sends its full headers, then only `afterBytes` bytes before the connection drops. */
  cutNext(name: string, afterBytes: number): void;
  readonly requests: readonly MirrorRequest[];
  close(): Promise<void>;
}

const CHUNK = 16 * 1024;

export async function startArtifactMirror(options: ArtifactMirrorOptions = {}): Promise<ArtifactMirror> {
  const prefix = `/${options.pathPrefix ?? ""}`;
  const { ca, cert, key } = await caIssuedCertificate();
  const bodies = new Map<string, { bytes: Uint8Array; etag: string }>();
  const corrupted = new Set<string>();
  const cuts = new Map<string, number>();
  const requests: MirrorRequest[] = [];

  const nameIn = (path: string): string | undefined => {
    if (!path.startsWith(prefix)) return undefined;
    try {
      return decodeURIComponent(path.slice(prefix.length));
    } catch {
      return undefined;
    }
  };

  const server: Server = createServer({ cert, key }, (req, res) => {
    const name = nameIn(new URL(req.url ?? "/", "https://127.0.0.1").pathname) ?? "";
    const stored = bodies.get(name);
    const range = req.headers.range;
    const log = (status: number, bytes: number) => requests.push({ name, range, status, bytes });
    if (!stored || (req.method !== "GET" && req.method !== "HEAD")) {
      const status = stored ? 405 : 404;
      log(status, 0);
      res.writeHead(status).end();
      return;
    }
    let body = stored.bytes;
    if (corrupted.has(name)) {
      body = Uint8Array.from(body);
      body[body.length - 1] = body[body.length - 1]! ^ 0xff;
    }
    const answer = byteRange(body, range);
    if (answer.status === 416) {
      log(416, 0);
      res.writeHead(416, answer.headers).end();
      return;
    }
    const { status, slice } = answer;
    res.writeHead(status, { ...answer.headers, etag: `"${stored.etag}"` });
    log(status, req.method === "HEAD" ? 0 : slice.length);
    if (req.method === "HEAD") {
      res.end();
      return;
    }
    const cut = cuts.get(name);
    cuts.delete(name);
    let at = 0;
    const pump = () => {
      if (res.destroyed) return;
      if (at >= slice.length) {
        res.end();
        return;
      }
      let n = Math.min(CHUNK, slice.length - at);
      if (cut !== undefined) n = Math.min(n, cut - at);
      if (n <= 0) {
        res.socket?.destroy();
        return;
      }
      at += n;
      if (cut !== undefined && at >= cut) {
        // The cut comes once the bytes before it have left: destroying a socket drops what it still buffers, and the
        // client must see exactly `cut` bytes, as from a peer that went away after sending them.
        res.write(slice.subarray(at - n, at), () => res.socket?.end());
        return;
      }
      res.write(slice.subarray(at - n, at));
      const delay = options.bytesPerSecond ? (n / options.bytesPerSecond) * 1000 : 0;
      setTimeout(pump, delay).unref();
    };
    pump();
  });
  const port = await listenOnLoopback(server);
  if (options.unref) server.unref();
  const origin = `https://127.0.0.1:${port}`;
  const base = `${origin}${prefix}`;
  return {
    origin,
    ca,
    url: (name) => `${base}${encodeURIComponent(name)}`,
    nameOf: (url) => (url.startsWith(base) ? decodeURIComponent(url.slice(base.length)) : undefined),
    put: (name, bytes) => void bodies.set(name, { bytes, etag: createHash("sha256").update(bytes).digest("hex") }),
    corrupt: (name) => {
      if (!bodies.has(name)) throw new Error(`no artifact ${name}`);
      corrupted.add(name);
    },
    cutNext: (name, afterBytes) => void cuts.set(name, afterBytes),
    requests,
    close: () => closeServer(server),
  };
}
