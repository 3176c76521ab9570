/**
 * What the service does with a message on `node-results`: decide, from the bytes alone, whether it is a valid result
 * from an enrolled node and new, and if so hand it to that node's saga as an event. At-least-once delivery and
 * retried steps are normal, so a result is raised once per (node, step, attempt) and everything else is harmless.
 * Permanent rejections (schema, signature, unknown node) are returned as such so the caller can quarantine the message;
 * transient failures throw so the broker redelivers.
 */
import { createHash, randomBytes } from "node:crypto";
import { ContractError } from "../../contract/errors.js";
import { importPublicKey } from "../../contract/keys.js";
import { parseUnverifiedStepResult, verifyStepResult, type StepResult } from "../../contract/step-result.js";
import type { Registry } from "../clients/registry/registry.js";

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

/** The run id of a saga started without one (older inputs): from the orchestration's deterministic GUID. */
export const runOf = (guid: string): string => guid.replace(/-/g, "").slice(0, 12).toLowerCase();

/**
 * The event a saga run waits for; unique per run and step attempt, so a duplicate or a previous run's late result can
 * never satisfy a later wait. The Durable client puts event names into URL paths unencoded, so the name keeps to
 * URL-safe characters; any other character in a step id is replaced and a digest suffix keeps distinct ids distinct.
 */
export function stepResultEvent(run: string, stepId: string, attempt: number): string {
  const safe = /^[A-Za-z0-9_-]+$/.test(stepId) ? stepId : `${stepId.replace(/[^A-Za-z0-9_-]/g, "_")}~${createHash("sha256").update(stepId).digest("hex").slice(0, 8)}`;
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

export interface NodeResultDeps {
  registry: Registry;
  /** Raises the event on the node's saga; resolves quietly if the saga is finished or gone (a late result). */
  raiseEvent(instanceId: string, eventName: string, data: StepResultEvent): Promise<void>;
}

export type NodeResultOutcome =
  | { kind: "raised"; nodeId: string; event: string }
  | { kind: "duplicate"; nodeId: string; event: string }
  | { kind: "rejected"; reason: "SchemaInvalid" | "UnknownNode" | "UnknownSaga" | "SignatureInvalid" | "NotJson"; description: string; nodeId?: string };

export async function handleNodeResult(body: unknown, deps: NodeResultDeps): Promise<NodeResultOutcome> {
  let raw: unknown = body;
  if (typeof body === "string" || body instanceof Uint8Array) {
    try {
      raw = JSON.parse(typeof body === "string" ? body : new TextDecoder("utf-8", { fatal: true }).decode(body));
    } catch {
      return reject(deps, { reason: "NotJson", description: "the message body is not UTF-8 JSON" });
    }
  }
  let claimed: StepResult;
  try {
    claimed = parseUnverifiedStepResult(raw);
  } catch (error) {
    return reject(deps, { reason: "SchemaInvalid", description: describe(error) });
  }
  const node = await deps.registry.getNode(claimed.nodeId);
  if (!node) return reject(deps, { reason: "UnknownNode", description: `no node '${claimed.nodeId}' is registered`, nodeId: claimed.nodeId });
  let result: StepResult;
  try {
    result = verifyStepResult(raw, { nodeId: node.nodeId, nodePublicKey: importPublicKey(node.publicKey) });
  } catch (error) {
    if (!(error instanceof ContractError)) throw error;
    return reject(deps, { reason: "SignatureInvalid", description: describe(error), nodeId: node.nodeId });
  }
  const saga = parseSagaRunId(result.sagaId, node.nodeId);
  if (!saga) return reject(deps, { reason: "UnknownSaga", description: `saga id '${result.sagaId}' is not one of node ${node.nodeId}'s (<instance>@<run>)`, nodeId: node.nodeId });
  const event = stepResultEvent(saga.run, result.stepId, result.attempt);
  const claimKey = `${saga.instanceId}@${saga.run}:${result.stepId}:${result.attempt}`;
  // Claimed before raising: if the raise then fails, the redelivery must still raise, so the claim is released.
  const first = await deps.registry.claimOnce(`result:${node.nodeId}`, claimKey);
  if (!first) return { kind: "duplicate", nodeId: node.nodeId, event };
  try {
    await deps.raiseEvent(saga.instanceId, event, {
      stepId: result.stepId,
      attempt: result.attempt,
      outcome: result.outcome,
      output: result.output,
      error: result.outcome === "failed" ? result.error : undefined,
      manifestDigest: result.manifestDigest,
      startedAt: result.startedAt,
      finishedAt: result.finishedAt,
    });
  } catch (error) {
    await deps.registry.releaseClaim(`result:${node.nodeId}`, claimKey);
    throw error;
  }
  return { kind: "raised", nodeId: node.nodeId, event };
}

async function reject(deps: NodeResultDeps, r: Omit<Extract<NodeResultOutcome, { kind: "rejected" }>, "kind">): Promise<NodeResultOutcome> {
  await deps.registry.audit({ actor: "service:node-results", action: "result.rejected", objectType: "node", objectId: r.nodeId ?? "unknown", details: { reason: r.reason, description: r.description } });
  return { kind: "rejected", ...r };
}

function describe(error: unknown): string {
  if (error instanceof ContractError) return `${error.code}: ${error.message}`;
  return error instanceof Error ? error.message : String(error);
}
