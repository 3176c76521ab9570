/**
 * Retry timing shared by enrolment, the node API client and the mailbox credential refresh: exponential backoff with
 * full jitter (so a fleet that lost the service at the same moment does not come back in lockstep), and the server's
 * own Retry-After when it gives one.
 */

export interface BackoffPolicy {
  /** Delay cap for the first retry, ms. */
  baseMs: number;
  /** Upper bound of any single delay, ms. */
  maxMs: number;
  /** Total attempts, including the first. */
  maxAttempts: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 1_000, maxMs: 60_000, maxAttempts: 8 };

/** Full jitter: a uniform delay in [0, min(max, base·2^(retry-1))]; `retry` counts from 1. */
export function backoffDelay(retry: number, policy: Pick<BackoffPolicy, "baseMs" | "maxMs">, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, retry - 1));
  return Math.floor(random() * ceiling);
}

/**
 * Retry-After as delta-seconds or an HTTP date (RFC 9110 §10.2.3), in ms from `now`; undefined when absent or
 * unreadable. Capped, so a hostile or broken front cannot park the agent for a week.
 */
export function retryAfterMs(header: string | undefined, now: Date, capMs = 15 * 60_000): number | undefined {
  if (header === undefined) return undefined;
  const value = header.trim();
  if (/^\d{1,10}$/.test(value)) return Math.min(capMs, Number(value) * 1000);
  const at = Date.parse(value);
  if (Number.isNaN(at)) return undefined;
  return Math.min(capMs, Math.max(0, at - now.getTime()));
}

export class AbortedError extends Error {
  readonly code = "aborted";
  constructor() {
    super("stopped");
    this.name = "AbortedError";
  }
}

/** Resolves after `ms`, or rejects with AbortedError as soon as `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(new AbortedError());
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(new AbortedError());
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

export type Sleep = (ms: number, signal?: AbortSignal) => Promise<void>;
