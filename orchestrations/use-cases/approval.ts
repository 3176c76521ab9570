/**
 * Admin decisions on nodes waiting for approval: a new node (token or pool requires approval, or a quarantined clone
 * with its own id) starts onboarding when approved; a quarantined claim on an existing node replaces that node's key.
 */
import type { NodeRecord } from "../clients/registry/model.js";
import { ensureSaga, rekey, type EnrolDeps } from "./enrol.js";
import { refuseWhileFinishing } from "./operator.js";

export class ApprovalError extends Error {
  constructor(
    readonly code: "node-not-found" | "not-awaiting-approval",
    message: string,
  ) {
    super(message);
    this.name = "ApprovalError";
  }
}

export async function approveNode(deps: EnrolDeps, nodeId: string, actor: string): Promise<NodeRecord> {
  const node = await deps.registry.nodes.get(nodeId);
  if (!node) throw new ApprovalError("node-not-found", `node '${nodeId}' does not exist`);
  if (node.pendingClaim) {
    const pool = (await deps.registry.pools.spec(node.pool))!;
    const outcome = await rekey(deps, { pool, node, claim: node.pendingClaim, actor, redeemToken: false });
    return outcome.node;
  }
  if (node.status !== "AwaitingApproval")
    throw new ApprovalError("not-awaiting-approval", `node '${nodeId}' is ${node.status}; only nodes awaiting approval can be approved`);
  await refuseWhileFinishing(deps, nodeId);
  // A node that enrolled again after a rejection kept it as lastError for the admin to see; approved, it is history.
  // A full pool does not refuse: the node waits for a slot in its saga (in-flight.ts).
  const approved = await deps.registry.nodes.update(
    node,
    () => ({ status: "Enrolling", sagaInstanceId: node.nodeId, lastError: undefined }),
    actor,
    "node.approve",
    {
      expect: ["AwaitingApproval"],
    },
  );
  // A node that enrolled again after failing has a finished saga under its id: approval starts a fresh run.
  await ensureSaga(deps, approved, { restart: true });
  return approved;
}

export async function rejectNode(deps: EnrolDeps, nodeId: string, actor: string): Promise<NodeRecord> {
  const node = await deps.registry.nodes.get(nodeId);
  if (!node) throw new ApprovalError("node-not-found", `node '${nodeId}' does not exist`);
  if (node.pendingClaim) return deps.registry.nodes.update(node, () => ({ pendingClaim: undefined }), actor, "node.reject-claim");
  if (node.status !== "AwaitingApproval")
    throw new ApprovalError("not-awaiting-approval", `node '${nodeId}' is ${node.status}; only nodes awaiting approval can be rejected`);
  return deps.registry.nodes.update(
    node,
    // Who rejected it is the audit's to say (node.reject): lastError is read by the node itself.
    () => ({ status: "Failed", lastError: { code: "Rejected", message: "rejected by an administrator", at: deps.now().toISOString() } }),
    actor,
    "node.reject",
    {
      expect: ["AwaitingApproval"],
    },
  );
}
