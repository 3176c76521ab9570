/**
 * A saga announces a transition as a lifecycle event. After the retries, a failure to publish is swallowed: the
 * registry holds the node's truth, and a Ready node must not be compensated because Event Grid was down.
 */
import type * as df from "durable-functions";
import type { OrchestrationContext } from "durable-functions";
import type { PublishInput } from "../activities/events.js";
import { acts } from "../activities/handles.js";
import { callAzure } from "./azure-call.js";
import type { Timing } from "./timing.js";

export function* announce(context: OrchestrationContext, timing: Timing, input: Omit<PublishInput, "at">): Generator<df.Task, void, unknown> {
  try {
    yield* callAzure(context, timing, acts.publishLifecycleEvent, { ...input, at: context.df.currentUtcDateTime.toISOString() });
  } catch {
    // Logged by the activity's failure; nothing to undo.
  }
}
