/**
 * offboardNode: takes a node out of the fleet and removes everything the service made for it. The agent is asked to
 * reset (bounded wait; a dead node must not block offboarding), then the recorded objects go in reverse creation order
 * (the Node object, any bootstrap token, role grants before the machine, the machine unless it was adopted, the
 * mailbox last), and the node ends Offboarded with its audit trail kept. Instance id `<nodeId>:offboard`, so a repeated
 * request finds the running one.
 */
import * as df from "durable-functions";
import type { OrchestrationContext } from "durable-functions";
import { runOf, sagaRunId } from "../use-cases/node-results.js";
import { objectRef, type CreatedObject, type NodeContext } from "../onboard/activities.js";
import { runStepAttempt } from "../onboard/step-attempt.js";
import { callAzure } from "../onboard/azure-call.js";
import { timingFrom, type Timing } from "../onboard/timing.js";

export const OFFBOARD_NODE = "offboardNode";
export const offboardInstanceId = (nodeId: string): string => `${nodeId}:offboard`;

export interface OffboardNodeInput {
  nodeId: string;
  reason: string;
  actor: string;
  /** This run's id on the wire (see newRunId); made by the starter. */
  run?: string;
  timing?: Partial<Timing>;
}

export function* offboardNode(context: OrchestrationContext): Generator<df.Task, { removed: string[]; remaining: string[] }, unknown> {
  const input = context.df.getInput<OffboardNodeInput>();
  const begun = (yield context.df.callActivity("offboard_begin", { nodeId: input.nodeId, reason: input.reason, actor: input.actor })) as { timing?: Partial<Timing>; hasMailbox: boolean; context?: NodeContext };
  const timing = timingFrom({ ...begun.timing, ...input.timing });
  context.df.setCustomStatus({ phase: "reset" });
  if (begun.hasMailbox && begun.context) {
    // Bounded and best effort: an unreachable or dead node must not block its offboarding.
    const run = input.run ?? runOf(context.df.newGuid(context.df.instanceId));
    yield* runStepAttempt(context, timing, { context: begun.context, sagaId: sagaRunId(context.df.instanceId, run), run, stepId: "reset", attempt: 1, timeoutMs: timing.resetWaitMs }, { bestEffort: true });
  }
  context.df.setCustomStatus({ phase: "remove" });
  const recorded = (yield* callAzure(context, timing, "onboard_recordedObjects", { nodeId: input.nodeId })) as CreatedObject[];
  const removed: string[] = [];
  const remaining: string[] = [];
  for (const o of [...recorded].reverse()) {
    try {
      yield* callAzure(context, timing, "onboard_removeObject", { nodeId: input.nodeId, object: o });
      removed.push(objectRef(o));
    } catch {
      remaining.push(objectRef(o));
    }
  }
  yield* callAzure(context, timing, "offboard_finish", { nodeId: input.nodeId, actor: input.actor, removed, remaining });
  context.df.setCustomStatus({ phase: remaining.length ? "incomplete" : "done" });
  return { removed, remaining };
}

df.app.orchestration(OFFBOARD_NODE, offboardNode);
