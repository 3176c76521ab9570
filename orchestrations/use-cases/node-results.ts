/**
 * What the service does with a message on `node-results`: decide, from the bytes alone, whether it is a valid result
 * from an enrolled node and new, and if so hand it to that node's saga as an event. At-least-once delivery and
 * retried steps are normal, so a result is raised once per (node, step, attempt) and everything else is harmless.
 * Permanent rejections (schema, signature, unknown node) are returned as such so the caller can quarantine the message;
 * transient failures throw so the broker redelivers. A rejection is recorded as a digest (sha256, size, reason), never
 * the body, and at most REJECTIONS_PER_WINDOW times per subject per window: the results queue is writable by every
 * enrolled node, so garbage must not cost storage in proportion to what is sent. Every node's Send token comes from the
 * same namespace rule, so the node a message names is only its sender once that node's signature verifies: until then a
 * rejection is charged to the shared `unknown` subject and the named node is kept as a detail, or any node could spend
 * another's quota and fill its audit trail.
 */
import { createHash } from "node:crypto";
import { ContractError } from "../../contract/errors.js";
import { isNodeId } from "../../contract/node-id.js";
import { importPublicKey } from "../../contract/keys.js";
import { parseUnverifiedStepResult, verifyStepResult, type StepResult } from "../../contract/step-result.js";
import type { Registry } from "../clients/registry/registry.js";
import { parseSagaRunId, stepResultEvent, type StepResultEvent } from "../onboard/saga-run.js";

export interface NodeResultDeps {
  registry: Registry;
  /** Raises the event on the node's saga; resolves quietly if the saga is finished or gone (a late result). */
  raiseEvent(instanceId: string, eventName: string, data: StepResultEvent): Promise<void>;
}

export const REJECTIONS_PER_WINDOW = 10;
export const REJECTION_WINDOW_MS = 3_600_000;
const DESCRIPTION_CHARS = 256;

export type RejectionReason = "SchemaInvalid" | "UnknownNode" | "UnknownSaga" | "SignatureInvalid" | "NotJson";

/** What is kept of a rejected message: enough to match it against a capture, nothing of its content. */
export interface RejectedDigest {
  reason: RejectionReason;
  description: string;
  /** The node that sent it: set only once its signature verified, and then the subject charged for it. */
  nodeId?: string;
  /** The node an unverified message names (a registered one, or at least a well-formed id); not the subject charged. */
  claimedNodeId?: string;
  sha256: string;
  size: number;
}

export type NodeResultOutcome =
  /** `result`: the verified result, for the caller's telemetry (its trace context and timing). */
  | { kind: "raised"; nodeId: string; event: string; result: StepResult }
  | { kind: "duplicate"; nodeId: string; event: string }
  /**
   * `recorded`: audited, and the caller should set the digest aside. Otherwise the subject's quota for the window is
   * spent; `firstOverQuota` marks the one rejection that should say so.
   */
  | { kind: "rejected"; digest: RejectedDigest; recorded: boolean; firstOverQuota: boolean };

export async function handleNodeResult(body: unknown, deps: NodeResultDeps): Promise<NodeResultOutcome> {
  let raw: unknown = body;
  if (typeof body === "string" || body instanceof Uint8Array) {
    try {
      raw = JSON.parse(typeof body === "string" ? body : new TextDecoder("utf-8", { fatal: true }).decode(body));
    } catch {
      return reject(deps, body, { reason: "NotJson", description: "the message body is not UTF-8 JSON" });
    }
  }
  let claimed: StepResult;
  try {
    claimed = parseUnverifiedStepResult(raw);
  } catch (error) {
    return reject(deps, body, { reason: "SchemaInvalid", description: describe(error) });
  }
  // The schema admits ids ('/', '#', '?') that no node has and Azure Tables refuses as a key: looked up, they would fail
  // the lookup and the message would be redelivered until dead-lettered instead of rejected here.
  if (!isNodeId(claimed.nodeId)) return reject(deps, body, { reason: "UnknownNode", description: `'${claimed.nodeId}' is not a node id` });
  const node = await deps.registry.nodes.get(claimed.nodeId);
  // Until the signature verifies, the named id is the sender's choice, so it is no subject for the quota: all share one.
  if (!node) return reject(deps, body, { reason: "UnknownNode", description: `no node '${claimed.nodeId}' is registered`, claimedNodeId: claimed.nodeId });
  let result: StepResult;
  try {
    result = verifyStepResult(raw, { nodeId: node.nodeId, nodePublicKey: importPublicKey(node.publicKey) });
  } catch (error) {
    if (!(error instanceof ContractError)) throw error;
    return reject(deps, body, { reason: "SignatureInvalid", description: describe(error), claimedNodeId: node.nodeId });
  }
  const saga = parseSagaRunId(result.sagaId, node.nodeId);
  if (!saga)
    return reject(deps, body, {
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
  return { kind: "raised", nodeId: node.nodeId, event, result };
}

/** `nodeId` only for a message whose signature verified; an unproven one names its node as `claimedNodeId`. */
async function reject(
  deps: NodeResultDeps,
  body: unknown,
  r: { reason: RejectionReason; description: string; nodeId?: string; claimedNodeId?: string },
): Promise<NodeResultOutcome> {
  const bytes = bytesOf(body);
  const digest: RejectedDigest = {
    reason: r.reason,
    description: r.description.slice(0, DESCRIPTION_CHARS),
    ...(r.nodeId ? { nodeId: r.nodeId } : {}),
    ...(r.claimedNodeId ? { claimedNodeId: r.claimedNodeId } : {}),
    sha256: createHash("sha256").update(bytes).digest("hex"),
    size: bytes.byteLength,
  };
  const quota = await deps.registry.rejections.take(r.nodeId ?? "unknown", REJECTIONS_PER_WINDOW, REJECTION_WINDOW_MS);
  if (quota.allowed) {
    await deps.registry.audit.write({
      actor: "service:node-results",
      action: "result.rejected",
      objectType: "node",
      objectId: r.nodeId ?? "unknown",
      details: { ...digest },
    });
  }
  return { kind: "rejected", digest, recorded: quota.allowed, firstOverQuota: quota.firstRefused };
}

/** The message as the broker delivered it: bytes, text, or JSON the binding already parsed (digested re-serialised). */
function bytesOf(body: unknown): Uint8Array {
  if (body instanceof Uint8Array) return body;
  return new TextEncoder().encode(typeof body === "string" ? body : (JSON.stringify(body) ?? String(body)));
}

function describe(error: unknown): string {
  if (error instanceof ContractError) return `${error.code}: ${error.message}`;
  return error instanceof Error ? error.message : String(error);
}
