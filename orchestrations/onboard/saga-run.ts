/**
 * How a saga run is named on the wire, in one place for both sides: the sagas use it to send envelopes and wait for
 * results, the results use case (use-cases/node-results.ts) to route a node's answer to the run that asked.
 */
import { createHash, randomBytes } from "node:crypto";
import type { StepResult } from "../../contract/step-result.js";

/**
 * The saga id a node sees in envelopes and echoes in results: `<orchestration instance id>@<run>`. The run part is
 * fresh for every run of an instance (a re-enrolled node's saga reuses its instance id; an offboarding follows an
 * onboarding on the same node), so neither the agent's de-duplication nor ours confuses two runs' "reset, attempt 1".
 */
export const sagaRunId = (instanceId: string, run: string): string => `${instanceId}@${run}`;

/** The orchestration instance and run a result belongs to, if its saga id is one of this node's. */
export function parseSagaRunId(sagaId: string, nodeId: string): { instanceId: string; run: string } | undefined {
  const at = sagaId.lastIndexOf("@");
  if (at < 0) return undefined;
  const instanceId = sagaId.slice(0, at);
  const run = sagaId.slice(at + 1);
  if (!/^[0-9a-f]{8,32}$/.test(run)) return undefined;
  return instanceId === nodeId || instanceId.startsWith(`${nodeId}:`) ? { instanceId, run } : undefined;
}

/**
 * A fresh run id, made by whoever starts a saga and passed in its input (so replays see the same one). The
 * orchestration's own newGuid is not enough: it derives from the instance id and start time, which a restarted
 * instance can repeat (a virtual clock does; so could two starts in one millisecond).
 */
export const newRunId = (): string => randomBytes(6).toString("hex");

/**
 * The event a saga run waits for; unique per run and step attempt, so a duplicate or a previous run's late result can
 * never satisfy a later wait. The Durable client puts event names into URL paths unencoded, so the name keeps to
 * URL-safe characters; any other character in a step id is replaced and a digest suffix keeps distinct ids distinct.
 */
export function stepResultEvent(run: string, stepId: string, attempt: number): string {
  const safe = /^[A-Za-z0-9_-]+$/.test(stepId)
    ? stepId
    : `${stepId.replace(/[^A-Za-z0-9_-]/g, "_")}~${createHash("sha256").update(stepId).digest("hex").slice(0, 8)}`;
  return `step-result.${run}.${safe}.${attempt}`;
}

/** What the saga receives: references and the small step output, never secrets (the agent never sends any). */
export interface StepResultEvent {
  stepId: string;
  attempt: number;
  outcome: StepResult["outcome"];
  output?: StepResult["output"];
  error?: { code: string; message: string; retryable: boolean };
  manifestDigest: string;
  startedAt: string;
  finishedAt: string;
}
