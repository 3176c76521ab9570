/**
 * Compensation: the one path by which a failed onboarding is undone — by the saga's own catch block, and by the
 * sweeper for a saga stuck beyond its deadline (terminated, then `compensateNode` runs this same code). The agent is
 * asked to reset (best effort), every object recorded on the node is removed in reverse creation order (role grants
 * before the machine, the mailbox last; absent counts as removed), and the node is marked Failed with the error and
 * what was and was not removed.
 */
import * as df from "durable-functions";
import type { OrchestrationContext } from "durable-functions";
import { runOf, sagaRunId } from "../use-cases/node-results.js";
import { objectRef, type CreatedObject, type NodeContext } from "./activities.js";
import { runStepAttempt } from "./step-attempt.js";
import { callAzure } from "./azure-call.js";
import { timingFrom, type Timing } from "./timing.js";

export const COMPENSATE_NODE = "compensateNode";
export const compensateInstanceId = (nodeId: string): string => `${nodeId}:compensate`;

export interface Compensation {
  nodeId: string;
  code: string;
  message: string;
  /** What the failing run knows it created (the registry's record is the superset; both are used). */
  known: CreatedObject[];
  /** Present when the node has a mailbox, so it can be asked to reset. */
  reset?: { context: NodeContext; sagaId: string; run: string };
}

export function* compensate(context: OrchestrationContext, timing: Timing, c: Compensation): Generator<df.Task, { removed: string[]; remaining: string[] }, unknown> {
  if (c.reset) {
    // Best effort: the agent undoes what its manifest records; compensation does not depend on the answer.
    yield* runStepAttempt(context, timing, { ...c.reset, stepId: "reset", attempt: 1, timeoutMs: timing.resetWaitMs }, { bestEffort: true });
  }
  let toRemove = [...c.known];
  try {
    const recorded = (yield* callAzure(context, timing, "onboard_recordedObjects", { nodeId: c.nodeId })) as CreatedObject[];
    toRemove = [...recorded, ...c.known.filter((k) => !recorded.some((r) => objectRef(r) === objectRef(k)))];
  } catch {
    // The registry is unreachable: remove what the run itself knows; the sweeper finds the rest by tag.
  }
  const removed: string[] = [];
  const remaining: string[] = [];
  for (const o of toRemove.reverse()) {
    try {
      yield* callAzure(context, timing, "onboard_removeObject", { nodeId: c.nodeId, object: o });
      removed.push(objectRef(o));
    } catch {
      remaining.push(objectRef(o));
    }
  }
  yield* callAzure(context, timing, "onboard_markFailed", { nodeId: c.nodeId, code: c.code, message: c.message, removed, remaining });
  return { removed, remaining };
}

export interface CompensateNodeInput {
  nodeId: string;
  code: string;
  message: string;
  /** This run's id on the wire (see newRunId); made by the starter. */
  run?: string;
  timing?: Partial<Timing>;
}

/** The sweeper's entry to compensation, for a node whose own saga can no longer run it. */
export function* compensateNode(context: OrchestrationContext): Generator<df.Task, { removed: string[]; remaining: string[] }, unknown> {
  const input = context.df.getInput<CompensateNodeInput>();
  context.df.setCustomStatus({ phase: "compensating", lastError: input.message });
  const begun = (yield context.df.callActivity("onboard_compensationContext", { nodeId: input.nodeId })) as { context?: NodeContext; timing?: Partial<Timing> };
  const timing = timingFrom({ ...begun.timing, ...input.timing });
  const run = input.run ?? runOf(context.df.newGuid(context.df.instanceId));
  const result = yield* compensate(context, timing, {
    nodeId: input.nodeId,
    code: input.code,
    message: input.message,
    known: [],
    reset: begun.context ? { context: begun.context, sagaId: sagaRunId(context.df.instanceId, run), run } : undefined,
  });
  context.df.setCustomStatus({ phase: "failed", lastError: input.message });
  return result;
}

df.app.orchestration(COMPENSATE_NODE, compensateNode);
