/** One node step attempt as the sagas run it: send the signed envelope, then wait for its result or its timeout. */
import type * as df from "durable-functions";
import type { OrchestrationContext } from "durable-functions";
import { acts } from "../activities/handles.js";
import type { NodeContext } from "../activities/node-context.js";
import { callAzure } from "./azure-call.js";
import { stepResultEvent, type StepResultEvent } from "./saga-run.js";
import type { Timing } from "./timing.js";

export interface StepAttempt {
  context: NodeContext;
  /** `<instanceId>@<run>` of the saga run sending it (see sagaRunId). */
  sagaId: string;
  run: string;
  /** Absent for `reset`, which needs no cluster details. */
  cluster?: { apiServer: string; kubernetesVersion: string };
  stepId: string;
  attempt: number;
  timeoutMs: number;
}

/** Resolves to the result, or undefined when the timer won (or, best effort, when the envelope could not be sent). */
export function* runStepAttempt(
  context: OrchestrationContext,
  timing: Timing,
  a: StepAttempt,
  options: { bestEffort?: boolean } = {},
): Generator<df.Task, StepResultEvent | undefined, unknown> {
  try {
    yield* callAzure(context, timing, acts.sendStep, {
      context: a.context,
      sagaId: a.sagaId,
      stepId: a.stepId,
      attempt: a.attempt,
      timeoutMs: a.timeoutMs,
      ...a.cluster,
    });
  } catch (error) {
    if (options.bestEffort) return undefined;
    throw error;
  }
  const result = context.df.waitForExternalEvent(stepResultEvent(a.run, a.stepId, a.attempt));
  const timeout = context.df.createTimer(new Date(context.df.currentUtcDateTime.getTime() + a.timeoutMs));
  const winner = yield context.df.Task.any([result, timeout]);
  if (winner === result) {
    timeout.cancel();
    return result.result as StepResultEvent;
  }
  return undefined;
}
