/**
 * What an operator sees of one node beyond its record: the live progress of the saga working on it (its custom
 * status) and a timeline of what happened to it — the audit log's entries and the onboarding run's node step
 * attempts with their outcome and duration.
 */
import { z } from "zod";
import type { NodeRecord } from "../clients/registry/model.js";
import type { Registry } from "../clients/registry/registry.js";
import { isRunning, type WorkflowClient, type WorkflowDescription } from "../clients/workflow-client.js";
import { compensateInstanceId } from "../onboard/compensate.js";
import type { StepAttemptRecord } from "../onboard/onboard-node.js";
import { offboardInstanceId } from "../offboard/offboard-node.js";

/** Every orchestration instance that works on a node, by id. */
export const nodeOperationIds = (nodeId: string): string[] => [nodeId, compensateInstanceId(nodeId), offboardInstanceId(nodeId)];

export const Operation = z.object({
  operationId: z.string().describe("The orchestration instance id (GET /api/manage/operations/{operationId})"),
  orchestration: z.string().optional(),
  runtimeStatus: z.string(),
  createdAt: z.iso.datetime(),
  updatedAt: z.iso.datetime().optional(),
  phase: z.string().optional(),
  step: z.string().optional(),
  attempt: z.int().optional(),
  lastError: z.string().optional(),
  stepCount: z.int().optional().describe("Node steps in the plan, once it is built"),
  stepsDone: z.int().optional().describe("Node steps that succeeded so far"),
});
export type Operation = z.infer<typeof Operation>;

export const TimelineEntry = z.object({
  at: z.iso.datetime(),
  kind: z.enum(["event", "step"]),
  /** event: the audit action (node.enrol, node.failed, …); step: the node step id. */
  what: z.string(),
  actor: z.string().optional(),
  details: z.record(z.string(), z.unknown()).optional(),
  attempt: z.int().optional(),
  outcome: z.enum(["succeeded", "failed", "timedOut"]).optional(),
  durationMs: z.int().optional(),
});
export type TimelineEntry = z.infer<typeof TimelineEntry>;

const Progress = z
  .object({
    phase: z.string().optional(),
    step: z.string().optional(),
    attempt: z.int().optional(),
    lastError: z.string().optional(),
    stepCount: z.int().optional(),
    attempts: z
      .array(z.object({ step: z.string(), attempt: z.int(), outcome: z.enum(["succeeded", "failed", "timedOut"]), startedAt: z.string(), durationMs: z.int() }))
      .optional(),
  })
  .catch({});

export function operationOf(operationId: string, d: WorkflowDescription): Operation {
  const p = Progress.parse(d.customStatus ?? {});
  return {
    operationId,
    orchestration: d.name,
    runtimeStatus: d.status,
    createdAt: d.createdAt.toISOString(),
    updatedAt: d.updatedAt?.toISOString(),
    phase: p.phase,
    step: p.step,
    attempt: p.attempt,
    lastError: p.lastError,
    stepCount: p.stepCount,
    stepsDone: p.attempts && new Set(p.attempts.filter((a) => a.outcome === "succeeded").map((a) => a.step)).size,
  };
}

export interface NodeInsight {
  /** The running operation on the node, else the one updated last; undefined when no saga ever ran for it. */
  progress?: Operation;
  timeline: TimelineEntry[];
}

export async function nodeInsight(deps: { registry: Registry; workflows: WorkflowClient }, node: NodeRecord): Promise<NodeInsight> {
  const ids = nodeOperationIds(node.nodeId);
  const [described, audit] = await Promise.all([
    Promise.all(ids.map((id) => deps.workflows.describe(id))),
    deps.registry.audit.listForObject(node.nodeId, new Date(node.createdAt)),
  ]);
  const found = ids.flatMap((id, i) => (described[i] ? [{ id, d: described[i] }] : []));
  const latest = (x: WorkflowDescription) => (x.updatedAt ?? x.createdAt).getTime();
  const current = found.find((f) => isRunning(f.d.status)) ?? [...found].sort((a, b) => latest(b.d) - latest(a.d))[0];
  const onboarding = found.find((f) => f.id === node.nodeId);
  const attempts: StepAttemptRecord[] = onboarding ? (Progress.parse(onboarding.d.customStatus ?? {}).attempts ?? []) : [];
  const timeline: TimelineEntry[] = [
    ...audit.map((e) => ({ at: e.at, kind: "event" as const, what: e.action, actor: e.actor, details: e.details })),
    ...attempts.map((a) => ({ at: a.startedAt, kind: "step" as const, what: a.step, attempt: a.attempt, outcome: a.outcome, durationMs: a.durationMs })),
  ].sort((a, b) => a.at.localeCompare(b.at));
  return { progress: current && operationOf(current.id, current.d), timeline };
}
