/** One HTTP exchange with the service, retried with backoff on transport failures and retryable statuses. */
import { backoffDelay, DEFAULT_BACKOFF, retryAfterMs, sleep as realSleep, type BackoffPolicy, type Sleep } from "./backoff.js";
import { TransportError, type HttpRequest, type HttpResponse, type HttpTransport } from "./http-transport.js";
import { isRetryable, problemOf, RetriesExhaustedError, ServiceRefusedError } from "./service-errors.js";

export interface RetryContext {
  http: HttpTransport;
  now(): Date;
  sleep?: Sleep;
  random?: () => number;
  backoff?: Partial<BackoffPolicy>;
  signal?: AbortSignal;
  /** Told before each wait, for progress output ("service busy, retrying in 12 s"). */
  onRetry?(info: { operation: string; attempt: number; delayMs: number; reason: string }): void;
}

/**
 * Calls `build()` for each attempt (signed requests need a fresh signature and nonce every time) and returns the first
 * response that is not worth retrying, which may still be a 4xx for the caller to interpret. When the attempts run out
 * it throws RetriesExhaustedError, whose cause is the last transport error or retryable answer.
 */
export async function callWithRetries(operation: string, build: () => Promise<HttpRequest> | HttpRequest, ctx: RetryContext): Promise<HttpResponse> {
  const policy = { ...DEFAULT_BACKOFF, ...ctx.backoff };
  const sleep = ctx.sleep ?? realSleep;
  let last: unknown;
  for (let attempt = 1; attempt <= policy.maxAttempts; attempt++) {
    ctx.signal?.throwIfAborted();
    let waitHint: number | undefined;
    let reason: string;
    try {
      const response = await ctx.http(await build());
      if (!isRetryable(response)) return response;
      waitHint = retryAfterMs(response.headers["retry-after"], ctx.now());
      reason = `HTTP ${response.status}`;
      last = new ServiceRefusedError(operation, response.status, problemOf(response));
      if (attempt === policy.maxAttempts) break;
    } catch (error) {
      if (!(error instanceof TransportError)) throw error;
      reason = error.message;
      last = error;
      if (attempt === policy.maxAttempts) break;
    }
    const delayMs = waitHint ?? backoffDelay(attempt, policy, ctx.random);
    ctx.onRetry?.({ operation, attempt, delayMs, reason });
    await sleep(delayMs, ctx.signal);
  }
  throw new RetriesExhaustedError(operation, policy.maxAttempts, { cause: last });
}
