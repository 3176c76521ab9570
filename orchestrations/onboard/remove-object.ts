/**
 * Removing one created object from a saga. Most removals are one activity call; an Arc machine's DELETE is a
 * long-running operation whose 202 asks the caller to come back after Retry-After (200 s in the published example).
 * Waiting that out inside an activity would hold a worker for minutes per look and lose the wait on a restart, so
 * the saga sleeps on a durable timer between looks, each look a short activity. Waits are bounded per look and in
 * all (timing.lroWait): an operation that never ends fails the removal, which the callers report as remaining.
 */
import type * as df from "durable-functions";
import type { OrchestrationContext } from "durable-functions";
import { objectRef, type CreatedObject } from "../activities/created-objects.js";
import { acts } from "../activities/handles.js";
import { callAzure } from "./azure-call.js";
import type { Timing } from "./timing.js";

export function* removeObject(context: OrchestrationContext, timing: Timing, nodeId: string, object: CreatedObject): Generator<df.Task, void, unknown> {
  let progress = yield* callAzure(context, timing, acts.removeObject, { nodeId, object });
  const { defaultIntervalMs, maxIntervalMs, maxTotalMs } = timing.lroWait;
  const giveUpAt = context.df.currentUtcDateTime.getTime() + maxTotalMs;
  while (!progress.done) {
    const now = context.df.currentUtcDateTime.getTime();
    if (now >= giveUpAt) throw new Error(`removing ${objectRef(object)}: ARM's operation still runs after ${maxTotalMs} ms`);
    const wait = Math.min(progress.retryAfterMs ?? defaultIntervalMs, maxIntervalMs, giveUpAt - now);
    yield context.df.createTimer(new Date(now + wait));
    progress = yield* callAzure(context, timing, acts.checkRemoval, { nodeId, object, monitor: progress.monitor });
  }
}
