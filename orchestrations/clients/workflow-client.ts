/**
 * The slice of the Durable client the enrolment use case needs. Triggers adapt `df.getClient(context)` to it; the use
 * case and its tests never see URLs or axios.
 */
import * as df from "durable-functions";
import type { DurableClient } from "durable-functions";
import { withTraceparent } from "../observability/tracing.js";
import type { StartOrchestration } from "./orchestration-start.js";

export type WorkflowStatus = "Pending" | "Running" | "Completed" | "Failed" | "Terminated" | "ContinuedAsNew" | "Suspended" | "Canceled";

export interface WorkflowClient {
  start(orchestration: string, options: { instanceId: string; input: unknown }): Promise<void>;
  /** undefined when no instance has that id. */
  status(instanceId: string): Promise<WorkflowStatus | undefined>;
  terminate(instanceId: string, reason: string): Promise<void>;
  /** Status and start time (and, where the client knows them, the last update and the saga's custom status); undefined when no such instance. */
  describe(instanceId: string): Promise<WorkflowDescription | undefined>;
}

export interface WorkflowDescription {
  status: WorkflowStatus;
  createdAt: Date;
  updatedAt?: Date;
  /** The orchestration's name. */
  name?: string;
  /** What the saga last passed to setCustomStatus (its progress). */
  customStatus?: unknown;
}

export const isRunning = (status: WorkflowStatus | undefined): boolean =>
  status === "Pending" || status === "Running" || status === "ContinuedAsNew" || status === "Suspended";

/**
 * The Durable client reports a missing instance as an error that mentions the extension's 404 (it has no typed error
 * for it): the one place that knows the shape.
 */
export const isMissingInstance = (error: unknown): boolean => error instanceof Error && /HTTP 404/.test(error.message);

/** Purges the history of finished instances; a slice of its own so the callers of WorkflowClient need not fake it. */
export interface HistoryPurger {
  /** Deletes Completed, Failed and Terminated instances created before `createdBefore`; the number deleted. */
  purgeFinished(createdBefore: Date): Promise<number>;
}

export function historyPurgerFrom(client: DurableClient): HistoryPurger {
  return {
    purgeFinished: async (createdBefore) => {
      // createdTimeFrom is required by the SDK's legacy (non-RPC) URL path; the epoch means "from the start".
      const result = await client.purgeInstanceHistoryBy({
        createdTimeFrom: new Date(0),
        createdTimeTo: createdBefore,
        runtimeStatus: [df.OrchestrationRuntimeStatus.Completed, df.OrchestrationRuntimeStatus.Failed, df.OrchestrationRuntimeStatus.Terminated],
      });
      return result.instancesDeleted;
    },
  };
}

/** `start`: how the client starts (orchestration-start.ts's starter, or the DurableClient's own startNew). */
export function workflowClientFrom(client: DurableClient, start: StartOrchestration): WorkflowClient {
  return {
    start: async (orchestration, { instanceId, input }) => {
      // The caller's trace context rides in the input: a saga cannot read ambient context, and its input never changes.
      await start(orchestration, { instanceId, input: withTraceparent(input) });
    },
    status: async (instanceId) => {
      try {
        return (await client.getStatus(instanceId)).runtimeStatus as WorkflowStatus;
      } catch (error) {
        if (isMissingInstance(error)) return undefined;
        throw error;
      }
    },
    terminate: (instanceId, reason) => client.terminate(instanceId, reason),
    describe: async (instanceId) => {
      try {
        const s = await client.getStatus(instanceId);
        return {
          status: s.runtimeStatus as WorkflowStatus,
          createdAt: new Date(s.createdTime),
          updatedAt: new Date(s.lastUpdatedTime),
          name: s.name,
          customStatus: s.customStatus ?? undefined,
        };
      } catch (error) {
        if (isMissingInstance(error)) return undefined;
        throw error;
      }
    },
  };
}
