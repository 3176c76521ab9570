/**
 * Pinned artifact downloads: HTTPS only (redirects too), resumable with Range into
 * /var/lib/flexnode/downloads/<sha256>.part, bounded retries with backoff, and the sha256 checked over the whole file
 * before it is renamed to <sha256> — nothing unverified is ever placed. Extra CA certificates (a private mirror, the
 * sandbox) are trusted in addition to the system roots.
 */
import { createWriteStream } from "node:fs";
import { mkdir, open, rename, rm, stat } from "node:fs/promises";
import type { IncomingMessage } from "node:http";
import { get } from "node:https";
import * as path from "node:path";
import { pipeline } from "node:stream/promises";
import { rootCertificates } from "node:tls";
import { sha256File as sha256Of } from "./fs-atomic.js";
import { STATE_DIR } from "./manifest.js";
import { fsPathOf } from "./paths.js";
import { ArtifactDigestMismatchError, DownloadFailedError } from "./step-errors.js";

export interface DownloadOptions {
  root: string;
  url: string;
  sha256: string;
  ca?: string;
  log(line: string): void;
  /** Requests before giving up (default 5); each one resumes where the last stopped. */
  attempts?: number;
  /** A request with no bytes for this long is abandoned (default 30 s). */
  idleTimeoutMs?: number;
  /** Refuse anything larger (default 4 GiB). */
  maxBytes?: number;
}

const MAX_REDIRECTS = 5;

export function downloadsDir(root: string): string {
  return path.join(fsPathOf(root, STATE_DIR), "downloads");
}

/** Drops a finished or abandoned download of `sha256` (the placed copy is what counts). */
export async function forgetDownload(root: string, sha256: string): Promise<void> {
  await rm(path.join(downloadsDir(root), sha256), { force: true });
  await rm(path.join(downloadsDir(root), `${sha256}.part`), { force: true });
}

async function sizeOf(file: string): Promise<number> {
  try {
    return (await stat(file)).size;
  } catch {
    return 0;
  }
}

class RetryableError extends Error {}

function request(url: string, headers: Record<string, string>, options: DownloadOptions, redirects = 0): Promise<IncomingMessage> {
  const target = new URL(url);
  if (target.protocol !== "https:")
    return Promise.reject(new DownloadFailedError(`refusing ${target.protocol} URL ${url}: artifacts are fetched over HTTPS only`, false));
  return new Promise((resolve, reject) => {
    const req = get(
      target,
      {
        headers: { ...headers, "accept-encoding": "identity", "user-agent": "flexnode-agent" },
        ...(options.ca ? { ca: [...rootCertificates, options.ca] } : {}),
      },
      (res) => {
        const status = res.statusCode ?? 0;
        if (status >= 300 && status < 400 && res.headers.location) {
          res.resume();
          if (redirects >= MAX_REDIRECTS) return reject(new DownloadFailedError(`too many redirects fetching ${url}`, false));
          return resolve(request(new URL(res.headers.location, target).toString(), headers, options, redirects + 1));
        }
        resolve(res);
      },
    );
    req.setTimeout(options.idleTimeoutMs ?? 30_000, () =>
      req.destroy(new RetryableError(`no response from ${target.host} within ${options.idleTimeoutMs ?? 30_000} ms`)),
    );
    req.on("error", (e: NodeJS.ErrnoException) => {
      if (e instanceof DownloadFailedError) return reject(e);
      // A certificate the agent does not trust will not become trusted by asking again.
      if (/CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)/.test(e.code ?? ""))
        return reject(new DownloadFailedError(`TLS to ${target.host} failed: ${e.code}: ${e.message}`, false, { cause: e }));
      reject(new RetryableError(e.message));
    });
  });
}

/** One request: appends to (or restarts) the .part file. Resolves when the server has sent everything it promised. */
async function fetchInto(part: string, options: DownloadOptions): Promise<void> {
  const have = await sizeOf(part);
  const res = await request(options.url, have > 0 ? { range: `bytes=${have}-` } : {}, options);
  const status = res.statusCode ?? 0;
  if (status === 416 && have > 0) {
    // Nothing left to send: the .part is complete (or wrong, which the digest check will tell).
    res.resume();
    return;
  }
  let append = false;
  if (status === 206) {
    const start = /^bytes (\d+)-/.exec(res.headers["content-range"] ?? "")?.[1];
    if (start === undefined || Number(start) !== have) {
      res.resume();
      await rm(part, { force: true });
      throw new RetryableError(`server answered a Range request from ${have} with ${res.headers["content-range"] ?? "no Content-Range"}`);
    }
    append = true;
  } else if (status !== 200) {
    res.resume();
    const message = `GET ${options.url} answered ${status}`;
    if (status >= 500 || status === 408 || status === 429) throw new RetryableError(message);
    throw new DownloadFailedError(message, false);
  }
  const length = Number(res.headers["content-length"] ?? Number.NaN);
  const limit = options.maxBytes ?? 4 * 1024 ** 3;
  if (Number.isFinite(length) && (append ? have : 0) + length > limit) {
    res.destroy();
    throw new DownloadFailedError(`${options.url} is larger than ${limit} bytes`, false);
  }
  const out = createWriteStream(part, { flags: append ? "a" : "w", mode: 0o600 });
  let total = append ? have : 0;
  // Without a Content-Length only counting protects the disk: the digest is checked after the bytes are down.
  const bounded = async function* (source: AsyncIterable<Buffer>) {
    for await (const chunk of source) {
      total += chunk.length;
      if (total > limit) throw new DownloadFailedError(`${options.url} is larger than ${limit} bytes`, false);
      yield chunk;
    }
  };
  try {
    await pipeline(res, bounded, out);
  } catch (e) {
    if (e instanceof DownloadFailedError) {
      await rm(part, { force: true });
      throw e;
    }
    throw new RetryableError(`download of ${options.url} broke off: ${(e as Error).message}`);
  }
  if (Number.isFinite(length) && (await sizeOf(part)) !== (append ? have : 0) + length) throw new RetryableError(`download of ${options.url} ended early`);
}

/** Downloads and verifies the artifact; returns the path of the verified file (<downloads>/<sha256>). */
export async function downloadVerified(options: DownloadOptions): Promise<string> {
  const dir = downloadsDir(options.root);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const done = path.join(dir, options.sha256);
  const part = `${done}.part`;
  if ((await sizeOf(done)) > 0 && (await sha256Of(done)) === options.sha256) return done;
  const attempts = options.attempts ?? 5;
  let restartedAfterMismatch = false;
  for (let attempt = 1; ; attempt++) {
    const resumed = (await sizeOf(part)) > 0;
    try {
      await fetchInto(part, options);
    } catch (e) {
      if (!(e instanceof RetryableError)) throw e;
      if (attempt >= attempts) throw new DownloadFailedError(`${e.message} (gave up after ${attempts} attempts)`, true, { cause: e });
      options.log(`download ${options.url}: ${e.message}; retrying (attempt ${attempt + 1} of ${attempts})`);
      await new Promise((r) => setTimeout(r, Math.min(200 * 2 ** (attempt - 1), 5_000)));
      continue;
    }
    const actual = await sha256Of(part);
    if (actual !== options.sha256) {
      await rm(part, { force: true });
      // A resumed download may have stitched two versions of a file together: start over once before blaming the artifact.
      if (resumed && !restartedAfterMismatch && attempt < attempts) {
        restartedAfterMismatch = true;
        continue;
      }
      throw new ArtifactDigestMismatchError(`${options.url} has sha256 ${actual}, not the pinned ${options.sha256}; nothing was placed`);
    }
    const handle = await open(part, "r+");
    await handle.sync();
    await handle.close();
    await rename(part, done);
    return done;
  }
}
