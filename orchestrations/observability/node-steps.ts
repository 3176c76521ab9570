/**
 * A node's step in the onboarding's trace. The agent echoes the envelope's `traceparent` in its signed result, so a
 * verified result names the sendStep span that asked for it: the step becomes a child span with the node's own start
 * and end times (the node's clock), next to the service's handling of the result.
 */
import type { StepResult } from "../../contract/step-result.js";
import { recordStepDuration } from "./metrics.js";
import { contextOf, markFailed, SpanKind, tracer } from "./tracing.js";

export function observeNodeStep(result: StepResult, handlingStartedAt: Date): void {
  const parent = contextOf(result.traceparent);
  const attributes = {
    "flexnode.node": result.nodeId,
    "flexnode.step": result.stepId,
    "flexnode.step.attempt": result.attempt,
    "flexnode.step.outcome": result.outcome,
  };
  const step = tracer().startSpan(`node step ${result.stepId}`, { kind: SpanKind.CONSUMER, attributes, startTime: new Date(result.startedAt) }, parent);
  if (result.outcome === "failed") markFailed(step, { code: result.error.code });
  step.end(new Date(result.finishedAt));
  tracer().startSpan(`node result ${result.stepId}`, { attributes, startTime: handlingStartedAt }, parent).end();
  recordStepDuration({
    stepId: result.stepId,
    outcome: result.outcome,
    seconds: (Date.parse(result.finishedAt) - Date.parse(result.startedAt)) / 1000,
    ...(result.outcome === "failed" ? { errorCode: result.error.code } : {}),
  });
}
