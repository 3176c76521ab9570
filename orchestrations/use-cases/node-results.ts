/**
 * What the service does with a message on `node-results`: decide, from the bytes alone, whether it is a valid result
 * from an enrolled node and new, and if so hand it to that node's saga as an event. At-least-once delivery and
 * retried steps are normal, so a result is raised once per (node, step, attempt) and everything else is harmless.
 * Permanent rejections (schema, signature, unknown node) are returned as such so the caller can quarantine the message;
 * transient failures throw so the broker redelivers.
 */
import { ContractError } from "../../contract/errors.js";
import { importPublicKey } from "../../contract/keys.js";
import { parseUnverifiedStepResult, verifyStepResult, type StepResult } from "../../contract/step-result.js";
import type { Registry } from "../clients/registry/registry.js";
import { parseSagaRunId, stepResultEvent, type StepResultEvent } from "../onboard/saga-run.js";

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
  const node = await deps.registry.nodes.get(claimed.nodeId);
  if (!node) return reject(deps, { reason: "UnknownNode", description: `no node '${claimed.nodeId}' is registered`, nodeId: claimed.nodeId });
  let result: StepResult;
  try {
    result = verifyStepResult(raw, { nodeId: node.nodeId, nodePublicKey: importPublicKey(node.publicKey) });
  } catch (error) {
    if (!(error instanceof ContractError)) throw error;
    return reject(deps, { reason: "SignatureInvalid", description: describe(error), nodeId: node.nodeId });
  }
  const saga = parseSagaRunId(result.sagaId, node.nodeId);
  if (!saga)
    return reject(deps, {
      reason: "UnknownSaga",
      description: `saga id '${result.sagaId}' is not one of node ${node.nodeId}'s (<instance>@<run>)`,
      nodeId: node.nodeId,
    });
  const event = stepResultEvent(saga.run, result.stepId, result.attempt);
  const claimKey = `${saga.instanceId}@${saga.run}:${result.stepId}:${result.attempt}`;
  // Claimed before raising: if the raise then fails, the redelivery must still raise, so the claim is released.
  const first = await deps.registry.claims.claimOnce(`result:${node.nodeId}`, claimKey);
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
    await deps.registry.claims.release(`result:${node.nodeId}`, claimKey);
    throw error;
  }
  return { kind: "raised", nodeId: node.nodeId, event };
}

async function reject(deps: NodeResultDeps, r: Omit<Extract<NodeResultOutcome, { kind: "rejected" }>, "kind">): Promise<NodeResultOutcome> {
  await deps.registry.audit.write({
    actor: "service:node-results",
    action: "result.rejected",
    objectType: "node",
    objectId: r.nodeId ?? "unknown",
    details: { reason: r.reason, description: r.description },
  });
  return { kind: "rejected", ...r };
}

function describe(error: unknown): string {
  if (error instanceof ContractError) return `${error.code}: ${error.message}`;
  return error instanceof Error ? error.message : String(error);
}
