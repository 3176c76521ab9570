/**
 * What an operator does to one node besides approving and decommissioning it: retry a Failed onboarding (a fresh run
 * under the same node id) and cancel an onboarding in flight.
 *
 * Cancel terminates the onboarding saga and starts `compensateNode` (the path the sweeper takes for a stuck saga)
 * rather than raising an event the saga would handle: a saga is waiting on a step result, a retry timer or an ARM
 * call at any moment, and a cancellation event would have to be raced at every one of those waits to be prompt.
 * Termination is immediate wherever the saga is, and compensation removes what the node's record says was created
 * (activities record an object before creating it), so nothing the terminated run made is missed.
 */
import type { NodeRecord } from "../clients/registry/model.js";
import { isRunning } from "../clients/workflow-client.js";
import { COMPENSATE_NODE, compensateInstanceId, type CompensateNodeInput } from "../onboard/compensate.js";
import { newRunId } from "../onboard/saga-run.js";
import { ensureSaga, type EnrolDeps } from "./enrol.js";
import { runningSaga } from "./node-sagas.js";

export class OperatorError extends Error {
  constructor(
    readonly code: "node-not-found" | "wrong-state" | "still-running",
    message: string,
  ) {
    super(message);
    this.name = "OperatorError";
  }
}

export type OperatorDeps = EnrolDeps;

/** A Failed node onboards again from the start: status Enrolling (taking a pool slot) and a fresh saga run. */
export async function retryNode(deps: OperatorDeps, nodeId: string, actor: string): Promise<{ node: NodeRecord; instanceId: string }> {
  const node = await existing(deps, nodeId);
  if (node.status !== "Failed") throw new OperatorError("wrong-state", `node '${nodeId}' is ${node.status}; only a Failed node can be retried`);
  await refuseWhileFinishing(deps, nodeId);
  const retried = await deps.registry.nodes.update(node, () => ({ status: "Enrolling", lastError: undefined, sagaInstanceId: nodeId }), actor, "node.retry", {
    expect: ["Failed"],
  });
  await ensureSaga(deps, retried, { restart: true });
  return { node: retried, instanceId: nodeId };
}

/** Stops an onboarding in flight and undoes it through compensation; the node ends Failed with code Cancelled. */
export async function cancelOnboarding(deps: OperatorDeps, nodeId: string, actor: string): Promise<{ node: NodeRecord; instanceId: string }> {
  const node = await existing(deps, nodeId);
  const instanceId = compensateInstanceId(nodeId);
  if (node.status !== "Enrolling" && node.status !== "Onboarding") {
    throw new OperatorError("wrong-state", `node '${nodeId}' is ${node.status}; only an onboarding in flight can be cancelled`);
  }
  // A second cancel finds the compensation running and starts nothing new.
  if (isRunning(await deps.workflows.status(instanceId))) return { node, instanceId };
  // Who cancelled is the audit's to say: this message reaches the node (GET /api/node/status) and the saga's history.
  const message = "cancelled by an administrator";
  if (isRunning(await deps.workflows.status(nodeId))) await deps.workflows.terminate(nodeId, message);
  const input: CompensateNodeInput = { nodeId, code: "Cancelled", message, run: newRunId(), claimFirst: true };
  await deps.workflows.start(COMPENSATE_NODE, { instanceId, input });
  await deps.registry.audit.write({ actor, action: "node.cancel", objectType: "node", objectId: nodeId, details: { from: node.status } });
  return { node, instanceId };
}

/**
 * A failed run marks the node Failed just before it ends: a restart (retry, or approval of a node that enrolled again)
 * must not race its last moments, or it would find the old run still running and start nothing. Nor may it start
 * beside the node's offboarding (a decommission of the node): all three of the node's sagas are asked.
 */
export async function refuseWhileFinishing(deps: Pick<OperatorDeps, "workflows">, nodeId: string): Promise<void> {
  const id = await runningSaga(deps.workflows, nodeId);
  if (id !== undefined) throw new OperatorError("still-running", `the node's run '${id}' is still finishing; retry in a few seconds`);
}

async function existing(deps: OperatorDeps, nodeId: string): Promise<NodeRecord> {
  const node = await deps.registry.nodes.get(nodeId);
  if (!node) throw new OperatorError("node-not-found", `node '${nodeId}' does not exist`);
  return node;
}
