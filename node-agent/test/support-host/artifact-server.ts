/**
 * A real HTTPS artifact mirror for the executors' tests: the shared test mirror (`test/support`: a certificate from the
 * test CA, which the agent trusts through `deps.ca`; Range requests; throttling; a response cut mid-way), so
 * resumption and kill -9 are exercised honestly. Loopback only, ephemeral port, unref'd so it never holds a test up.
 */
import { startArtifactMirror } from "../../../test/support/index.js";

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
  /** Every request so far, in order. */
  readonly requests: ServedRequest[];
  close(): Promise<void>;
}

export interface ArtifactServerOptions {
  /** Stream at about this rate (default: as fast as possible). */
  bytesPerSecond?: number;
}

export async function startArtifactServer(options: ArtifactServerOptions = {}): Promise<ArtifactServer> {
  const mirror = await startArtifactMirror({ unref: true, ...(options.bytesPerSecond ? { bytesPerSecond: options.bytesPerSecond } : {}) });
  return {
    ca: mirror.ca,
    origin: mirror.origin,
    url: (name) => mirror.url(name),
    put: (name, body) => mirror.put(name, body),
    cutNext: (name, afterBytes) => mirror.cutNext(name, afterBytes),
    get requests() {
      return mirror.requests.map(({ name, range, status }) => ({ path: name, ...(range ? { range } : {}), status }));
    },
    close: () => mirror.close(),
  };
}
