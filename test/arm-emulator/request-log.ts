/** Every request the emulator saw, in arrival order, for assertions such as "the SDK polled twice". */
import { normalisePath } from "../support/index.js";
import type { OpClass } from "./throttling.js";

export interface RequestLogEntry {
  seq: number;
  /** Emulated time the request arrived (ms since the epoch, from the emulator's clock). */
  at: number;
  method: string;
  /** Normalised path: `//` collapsed, percent-decoded, no query string. */
  path: string;
  query: Record<string, string>;
  apiVersion: string | undefined;
  /** Caller principal from the bearer token; undefined when authentication failed. */
  principalId: string | undefined;
  opClass: OpClass;
  /** Name of the matched route (e.g. `machines.put`), undefined for unknown routes. */
  route: string | undefined;
  /** Response status; 0 when the connection was dropped. */
  status: number;
  /** ARM error code of an error response. */
  errorCode: string | undefined;
  throttled: boolean;
  /** The injected fault that shaped this response, if any. */
  faulted: "status" | "latency" | "drop" | undefined;
  clientRequestId: string | undefined;
  correlationId: string;
  requestId: string;
  /** Parsed JSON body (raw text when it is not JSON). */
  body: unknown;
}

export interface RequestLogQuery {
  method?: string;
  /** Case-insensitive exact path, or a RegExp tested against the normalised path. */
  path?: string | RegExp;
  route?: string;
  status?: number;
}

export class RequestLog {
  private readonly list: RequestLogEntry[] = [];

  get entries(): readonly RequestLogEntry[] {
    return this.list;
  }

  append(entry: RequestLogEntry): void {
    this.list.push(entry);
  }

  filter(query: RequestLogQuery = {}): RequestLogEntry[] {
    return this.list.filter(
      (e) =>
        (query.method === undefined || e.method === query.method.toUpperCase()) &&
        (query.route === undefined || e.route === query.route) &&
        (query.status === undefined || e.status === query.status) &&
        (query.path === undefined ||
          (query.path instanceof RegExp ? query.path.test(e.path) : e.path.toLowerCase() === normalisePath(query.path).toLowerCase())),
    );
  }

  clear(): void {
    this.list.length = 0;
  }
}
