/**
 * Compensation: the one path by which a failed onboarding is undone — by the saga's own catch block, and by the
 * sweeper for a saga stuck beyond its deadline (terminated, then `compensateNode` runs this same code). The agent is
 * asked to reset (best effort), every object recorded on the node is removed in reverse creation order (role grants
 * before the machine, the mailbox last; absent counts as removed), and the node is marked Failed with the error and
 * what was and was not removed — unless it left the onboarding's hands meanwhile (decommissioned): then it is left as is.
 */
import type * as df from "durable-functions";
import type { OrchestrationContext } from "durable-functions";
import { objectRef, type CreatedObject } from "../activities/created-objects.js";
import { acts } from "../activities/handles.js";
import type { NodeContext } from "../activities/node-context.js";
import { announce } from "./announce.js";
import { callAzure } from "./azure-call.js";
import { removeInReverse, type Removal } from "./remove-in-reverse.js";
import { sagaRunId } from "./saga-run.js";
import { runStepAttempt } from "./step-attempt.js";
import { timingFrom, type Timing } from "./timing.js";

export const COMPENSATE_NODE = "compensateNode";
export const compensateInstanceId = (nodeId: string): string => `${nodeId}:compensate`;

export interface Compensation {
  nodeId: string;
  code: string;
  message: string;
  /** What the failing run knows it created (the registry's record is the superset; both are used). */
  known: CreatedObject[];
  /** The failing run (the lifecycle event's id is derived from it). */
  run: string;
  /** Present when the node has a mailbox, so it can be asked to reset. */
  reset?: { context: NodeContext; sagaId: string; run: string };
  /** The node was taken from the onboarding first (compensateNode): it is Failed already. */
  claimed?: boolean;
}

export function* compensate(context: OrchestrationContext, timing: Timing, c: Compensation): Generator<df.Task, Removal, unknown> {
  if (c.reset) {
    // Best effort: the agent undoes what its manifest records; compensation does not depend on the answer.
    yield* runStepAttempt(context, timing, { ...c.reset, stepId: "reset", attempt: 1, timeoutMs: timing.resetWaitMs }, { bestEffort: true });
  }
  let toRemove = [...c.known];
  try {
    const recorded = yield* callAzure(context, timing, acts.recordedObjects, { nodeId: c.nodeId });
    toRemove = [...recorded, ...c.known.filter((k) => !recorded.some((r) => objectRef(r) === objectRef(k)))];
  } catch {
    // The registry is unreachable: remove what the run itself knows; the sweeper finds the rest by tag.
  }
  const { removed, remaining } = yield* removeInReverse(context, timing, c.nodeId, toRemove);
  // false: the node is no longer the onboarding's (decommissioned or started over meanwhile), so it was not marked
  // and no failure is announced. Histories from before markFailed answered hold undefined: it was marked.
  const marked = yield* callAzure(context, timing, acts.markFailed, {
    nodeId: c.nodeId,
    code: c.code,
    message: c.message,
    removed,
    remaining,
    ...(c.claimed ? { claimed: true } : {}),
  });
  if (marked !== false) yield* announce(context, timing, { kind: "failed", nodeId: c.nodeId, run: c.run, code: c.code, message: c.message });
  return { removed, remaining };
}

export interface CompensateNodeInput {
  nodeId: string;
  code: string;
  message: string;
  /** This run's id on the wire (see newRunId); made by the starter. */
  run: string;
  /**
   * Take the node from the onboarding before removing anything (claimForCompensation). Set by every starter; absent
   * only in instances started before the claim existed, which must replay the activities they scheduled.
   */
  claimFirst?: boolean;
}

/** The sweeper's entry to compensation, for a node whose own saga can no longer run it. */
export function* compensateNode(context: OrchestrationContext): Generator<df.Task, Removal, unknown> {
  const input = context.df.getInput<CompensateNodeInput>();
  context.df.setCustomStatus({ phase: "compensating", lastError: input.message });
  // A registry read, retried (by the code's timing: the run's own is what it answers) so a transient failure does not
  // leave the node's compensation undone.
  const begun = yield* callAzure(context, timingFrom(undefined), acts.compensationContext, { nodeId: input.nodeId });
  const timing = timingFrom(begun.timing);
  // The stopped saga may still have an activity running (terminate does not stop one): take the node first, and
  // undo nothing if it became Ready before that (claimForCompensation).
  const claimed = input.claimFirst
    ? yield* callAzure(context, timing, acts.claimForCompensation, { nodeId: input.nodeId, code: input.code, message: input.message })
    : undefined;
  if (claimed === false) {
    context.df.setCustomStatus({ phase: "skipped", lastError: "the node is no longer onboarding (Ready or taken over): nothing was undone" });
    return { removed: [], remaining: [] };
  }
  const result = yield* compensate(context, timing, {
    nodeId: input.nodeId,
    code: input.code,
    message: input.message,
    known: [],
    run: input.run,
    reset: begun.context ? { context: begun.context, sagaId: sagaRunId(context.df.instanceId, input.run), run: input.run } : undefined,
    claimed: claimed === true,
  });
  context.df.setCustomStatus({ phase: "failed", lastError: input.message });
  return result;
}
