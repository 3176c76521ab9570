/** Every request the emulator answered, in order, for assertions such as "the client never retried". */

export interface KubeRequestLogEntry {
  seq: number;
  /** Emulated time (ms since the epoch) from the emulator's clock. */
  at: number;
  method: string;
  /** Decoded path without the query string. */
  path: string;
  query: Record<string, string>;
  /** e.g. `secrets.create`; undefined when no route matched. */
  route: string | undefined;
  /** Authenticated user name; undefined when authentication failed or was not reached. */
  user: string | undefined;
  status: number;
  /** Status.reason of a failure answer. */
  reason: string | undefined;
  faulted: "status" | "latency" | "drop" | undefined;
  /** Parsed request body with Secret data values redacted. */
  body: unknown;
}

export interface KubeRequestLogQuery {
  method?: string;
  route?: string;
  status?: number;
  user?: string;
}

export class KubeRequestLog {
  private readonly list: KubeRequestLogEntry[] = [];

  get entries(): readonly KubeRequestLogEntry[] {
    return this.list;
  }

  append(entry: KubeRequestLogEntry): void {
    this.list.push(entry);
  }

  filter(query: KubeRequestLogQuery = {}): KubeRequestLogEntry[] {
    return this.list.filter(
      (e) =>
        (query.method === undefined || e.method === query.method.toUpperCase()) &&
        (query.route === undefined || e.route === query.route) &&
        (query.status === undefined || e.status === query.status) &&
        (query.user === undefined || e.user === query.user),
    );
  }

  clear(): void {
    this.list.length = 0;
  }
}

/** Secret payloads stay out of the log; keys are kept so a test can see which fields were sent. */
export function redactBody(body: unknown): unknown {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return body;
  const out: Record<string, unknown> = { ...(body as Record<string, unknown>) };
  for (const field of ["data", "stringData"]) {
    const map = out[field];
    if (typeof map === "object" && map !== null) out[field] = Object.fromEntries(Object.keys(map).map((k) => [k, "<redacted>"]));
  }
  return out;
}
