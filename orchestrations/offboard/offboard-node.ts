/**
 * offboardNode: takes a node out of the fleet and removes everything the service made for it. The agent is asked to
 * reset (bounded wait; a dead node must not block offboarding), then the recorded objects go in reverse creation order
 * (the Node object, any bootstrap token, role grants before the machine, the machine unless it was adopted, the
 * mailbox last), and the node ends Offboarded with its audit trail kept. Instance id `<nodeId>:offboard`, so a repeated
 * request finds the running one.
 */
import type * as df from "durable-functions";
import type { OrchestrationContext } from "durable-functions";
import { acts } from "../activities/handles.js";
import { announce } from "../onboard/announce.js";
import { callAzure } from "../onboard/azure-call.js";
import { removeInReverse, type Removal } from "../onboard/remove-in-reverse.js";
import { sagaRunId } from "../onboard/saga-run.js";
import { runStepAttempt } from "../onboard/step-attempt.js";
import { timingFrom } from "../onboard/timing.js";

export const OFFBOARD_NODE = "offboardNode";
export const offboardInstanceId = (nodeId: string): string => `${nodeId}:offboard`;

export interface OffboardNodeInput {
  nodeId: string;
  reason: string;
  actor: string;
  /** This run's id on the wire (see newRunId); made by the starter. */
  run: string;
}

export function* offboardNode(context: OrchestrationContext): Generator<df.Task, Removal, unknown> {
  const input = context.df.getInput<OffboardNodeInput>();
  // Retried (by the code's timing until the run's own is known) so a transient registry failure does not lose a
  // decommission already answered 202; offboardBegin is idempotent.
  const begun = yield* callAzure(context, timingFrom(undefined), acts.offboardBegin, { nodeId: input.nodeId, reason: input.reason, actor: input.actor });
  const timing = timingFrom(begun.timing);
  context.df.setCustomStatus({ phase: "reset" });
  if (begun.hasMailbox && begun.context) {
    // Bounded and best effort: an unreachable or dead node must not block its offboarding.
    yield* runStepAttempt(
      context,
      timing,
      {
        context: begun.context,
        sagaId: sagaRunId(context.df.instanceId, input.run),
        run: input.run,
        stepId: "reset",
        attempt: 1,
        timeoutMs: timing.resetWaitMs,
      },
      { bestEffort: true },
    );
  }
  context.df.setCustomStatus({ phase: "remove" });
  const recorded = yield* callAzure(context, timing, acts.recordedObjects, { nodeId: input.nodeId });
  const { removed, remaining } = yield* removeInReverse(context, timing, input.nodeId, recorded);
  // false: the node is no longer Offboarding (another saga's now); it is left as is and nothing is announced. Histories
  // from before offboardFinish answered hold undefined: it was written.
  const finished = yield* callAzure(context, timing, acts.offboardFinish, { nodeId: input.nodeId, actor: input.actor, removed, remaining });
  if (finished !== false) yield* announce(context, timing, { kind: "offboarded", nodeId: input.nodeId, run: input.run, remaining });
  context.df.setCustomStatus({ phase: remaining.length ? "incomplete" : "done" });
  return { removed, remaining };
}
