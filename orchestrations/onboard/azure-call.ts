/**
 * How the sagas call activities that touch Azure: a retry loop in the orchestration instead of
 * callActivityWithRetry, for two things a durable retry policy cannot do. It waits at least as long as ARM's
 * Retry-After asked (the throttled activity's FailureDetails carry it, see retry-after.ts), and it spreads retries
 * with jitter, so sagas throttled together do not come back together and spend the write budget again. The jitter is
 * deterministic — a hash of the instance, the call and the attempt — so replays take the same decisions. A throttled
 * attempt gets a longer budget than other failures: throttling is the expected state of a busy fleet. A request the
 * service's own pacer held back (nothing was sent) comes back exactly when its promised token is due, no earlier and
 * no later: the pacer has already spread the waits, and a late holder leaves its token unused while others queue.
 */
import { createHash } from "node:crypto";
import type * as df from "durable-functions";
import type { OrchestrationContext } from "durable-functions";
import { call, type ActivityHandle } from "../activities/handles.js";
import { throttlingOf } from "./retry-after.js";
import type { Timing } from "./timing.js";

export function* callAzure<I, O>(
  context: OrchestrationContext,
  timing: Timing,
  activity: ActivityHandle<I, O>,
  input: NoInfer<I>,
): Generator<df.Task, O, unknown> {
  const p = timing.azureRetry;
  let failures = 0;
  let throttles = 0;
  let paced = 0;
  for (let attempt = 1; ; attempt++) {
    try {
      return yield* call(context, activity, input);
    } catch (error) {
      const throttled = throttlingOf(error);
      if (throttled?.paced) {
        // A bound for safety only: a request waits for the writes of older sagas, and there are finitely many.
        if (++paced >= MAX_PACED_WAITS) throw error;
        yield context.df.createTimer(new Date(context.df.currentUtcDateTime.getTime() + Math.max(1, throttled.retryAfterMs)));
        continue;
      }
      if (throttled) throttles++;
      else failures++;
      if (failures >= p.maxAttempts || throttles >= 2 * p.maxAttempts) throw error;
      const backoff = Math.min(p.maxRetryMs, p.firstRetryMs * p.backoff ** (attempt - 1));
      // 50–150 % of the back-off, never less than Retry-After.
      const delay = Math.max(throttled?.retryAfterMs ?? 0, Math.round(backoff * (0.5 + jitter(context.df.instanceId, activity.name, input, attempt))));
      yield context.df.createTimer(new Date(context.df.currentUtcDateTime.getTime() + delay));
    }
  }
}

/** Waits for the pacer's promised tokens one call may take (the fleet bench's busiest calls take a few dozen). */
const MAX_PACED_WAITS = 200;

/** A number in [0, 1) fixed by its arguments: the same on every replay. */
function jitter(instanceId: string, name: string, input: unknown, attempt: number): number {
  const digest = createHash("sha256")
    .update(`${instanceId}\n${name}\n${JSON.stringify(input)}\n${attempt}`)
    .digest();
  return digest.readUInt32BE(0) / 2 ** 32;
}
