/**
 * Per-route fault injection, shared by the ARM, Kubernetes and Service Bus emulators: error statuses, extra latency
 * and dropped connections, each for a bounded number of matching requests, so a test can script "the first PUT fails
 * with 503, the retry succeeds". Each emulator answers a status fault in its own error format.
 */
import { normalisePath } from "./request-path.js";

export interface FaultSpec {
  /** Matches any method when omitted. */
  method?: string;
  /**
   * A string matches the normalised request path case-insensitively; a trailing `*` makes it a prefix. A RegExp is
   * tested against the normalised path (no query string).
   */
  path: string | RegExp;
  /** Matching requests the fault applies to; defaults to 1. Use `Infinity` for every request. */
  times?: number;
  /** Answer with this status and the emulator's error body (ARM error, Kubernetes Status, ...) instead of handling the request. */
  status?: number;
  code?: string;
  message?: string;
  /** Adds `Retry-After` (whole seconds). */
  retryAfterSeconds?: number;
  /** Adds `retry-after-ms`, which the SDK prefers over Retry-After. */
  retryAfterMs?: number;
  /** Delay before the request is answered (or dropped), through the emulator's sleep. */
  latencyMs?: number;
  /** Fail the connection: the server destroys the socket (the ARM in-process client throws ECONNRESET). */
  drop?: boolean;
}

export interface InjectedFault {
  readonly spec: Readonly<FaultSpec>;
  /** Requests this fault has applied to so far. */
  readonly hits: number;
  readonly remaining: number;
  clear(): void;
}

const DEFAULT_CODES: Record<number, string> = {
  408: "RequestTimeout",
  429: "TooManyRequests",
  500: "InternalServerError",
  502: "BadGateway",
  503: "ServiceUnavailable",
  504: "GatewayTimeout",
};

export function defaultFaultCode(status: number): string {
  return DEFAULT_CODES[status] ?? "InjectedFault";
}

class Fault implements InjectedFault {
  hits = 0;
  private cleared = false;

  constructor(
    readonly spec: Readonly<FaultSpec>,
    private readonly onClear: (fault: Fault) => void,
  ) {}

  get remaining(): number {
    return this.cleared ? 0 : Math.max(0, (this.spec.times ?? 1) - this.hits);
  }

  matches(method: string, path: string): boolean {
    if (this.remaining <= 0) return false;
    if (this.spec.method !== undefined && this.spec.method.toUpperCase() !== method.toUpperCase()) return false;
    const pattern = this.spec.path;
    if (pattern instanceof RegExp) return pattern.test(path);
    const wanted = pattern.endsWith("*") ? normalisePath(pattern.slice(0, -1)) : normalisePath(pattern);
    const actual = path.toLowerCase();
    return pattern.endsWith("*") ? actual.startsWith(wanted.toLowerCase()) : actual === wanted.toLowerCase();
  }

  clear(): void {
    this.cleared = true;
    this.onClear(this);
  }
}

export class FaultInjector {
  private faults: Fault[] = [];

  inject(spec: FaultSpec): InjectedFault {
    if (spec.status === undefined && spec.latencyMs === undefined && spec.drop !== true) {
      throw new TypeError("a fault needs a status, a latencyMs or drop: true");
    }
    const fault = new Fault({ ...spec }, (f) => {
      this.faults = this.faults.filter((x) => x !== f);
    });
    this.faults.push(fault);
    return fault;
  }

  /** The first live fault matching the request, consumed once. Faults apply in injection order. */
  take(method: string, path: string): Readonly<FaultSpec> | undefined {
    const fault = this.faults.find((f) => f.matches(method, path));
    if (!fault) return undefined;
    fault.hits += 1;
    return fault.spec;
  }

  get active(): readonly InjectedFault[] {
    return this.faults.filter((f) => f.remaining > 0);
  }

  clear(): void {
    const all = this.faults;
    this.faults = [];
    for (const fault of all) fault.clear();
  }
}
