/**
 * How the sagas call activities that touch Azure: a retry loop in the orchestration instead of
 * callActivityWithRetry, for two things a durable retry policy cannot do. It waits at least as long as ARM's
 * Retry-After asked (the activity puts the hint in its error message, which history keeps), and it spreads retries
 * with jitter, so sagas throttled together do not come back together and spend the write budget again. The jitter is
 * deterministic — a hash of the instance, the call and the attempt — so replays take the same decisions. A throttled
 * attempt gets a longer budget than other failures: throttling is the expected state of a busy fleet.
 */
import { createHash } from "node:crypto";
import type * as df from "durable-functions";
import type { OrchestrationContext } from "durable-functions";
import type { Timing } from "./timing.js";

export const RETRY_AFTER_MARK = "retry-after-ms=";
const THROTTLED = /\(throttled[;)]/;

export function* callAzure(context: OrchestrationContext, timing: Timing, name: string, input: unknown): Generator<df.Task, unknown, unknown> {
  const p = timing.azureRetry;
  let failures = 0;
  let throttles = 0;
  for (let attempt = 1; ; attempt++) {
    try {
      return yield context.df.callActivity(name, input);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      const throttled = THROTTLED.test(message);
      if (throttled) throttles++;
      else failures++;
      if (failures >= p.maxAttempts || throttles >= 2 * p.maxAttempts) throw error;
      const backoff = Math.min(p.maxRetryMs, p.firstRetryMs * p.backoff ** (attempt - 1));
      // 50–150 % of the back-off, never less than Retry-After.
      const delay = Math.max(retryAfterMs(message), Math.round(backoff * (0.5 + jitter(context.df.instanceId, name, input, attempt))));
      yield context.df.createTimer(new Date(context.df.currentUtcDateTime.getTime() + delay));
    }
  }
}

function retryAfterMs(message: string): number {
  const i = message.lastIndexOf(RETRY_AFTER_MARK);
  const ms = i < 0 ? NaN : Number.parseInt(message.slice(i + RETRY_AFTER_MARK.length), 10);
  return Number.isFinite(ms) && ms > 0 ? Math.min(ms, 10 * 60_000) : 0;
}

/** A number in [0, 1) fixed by its arguments: the same on every replay. */
function jitter(instanceId: string, name: string, input: unknown, attempt: number): number {
  const digest = createHash("sha256").update(`${instanceId}\n${name}\n${JSON.stringify(input)}\n${attempt}`).digest();
  return digest.readUInt32BE(0) / 2 ** 32;
}
