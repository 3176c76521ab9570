/**
 * A WorkflowClient whose starts carry the caller's trace context in the saga's input (`traceparent`): how a saga
 * learns which trace it belongs to without reading ambient state, which a replay could not reproduce. The input
 * itself is fixed once started, so every replay sees the same `traceparent`.
 */
import type { WorkflowClient } from "../clients/workflow-client.js";
import { currentTraceparent } from "./tracing.js";

export function tracedWorkflows(workflows: WorkflowClient): WorkflowClient {
  return {
    ...workflows,
    start: (orchestration, { instanceId, input }) => {
      const traceparent = currentTraceparent();
      const traced = traceparent && typeof input === "object" && input !== null ? { ...input, traceparent } : input;
      return workflows.start(orchestration, { instanceId, input: traced });
    },
  };
}
