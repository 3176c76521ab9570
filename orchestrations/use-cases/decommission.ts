/**
 * Decommission: an admin takes a node out of the fleet. An onboarding in flight, or its compensation, stops (offboarding
 * removes what it recorded, so nothing it made is lost) and the node's offboarding saga starts under `<nodeId>:offboard`.
 * Safe to repeat: a second request finds the offboarding running and starts nothing new.
 */
import type { Registry } from "../clients/registry/registry.js";
import { isRunning, type WorkflowClient } from "../clients/workflow-client.js";
import { OFFBOARD_NODE, offboardInstanceId, type OffboardNodeInput } from "../offboard/offboard-node.js";
import { compensateInstanceId } from "../onboard/compensate.js";
import { newRunId } from "../onboard/saga-run.js";

export interface DecommissionDeps {
  registry: Registry;
  workflows: WorkflowClient;
}

export type DecommissionOutcome = { kind: "started" | "alreadyRunning"; nodeId: string; instanceId: string } | { kind: "notFound"; nodeId: string };

export async function decommissionNode(deps: DecommissionDeps, nodeId: string, actor: string): Promise<DecommissionOutcome> {
  const node = await deps.registry.nodes.get(nodeId);
  if (!node) return { kind: "notFound", nodeId };
  const outcome = await startOffboarding(deps, node.nodeId, { reason: `decommissioned by ${actor}`, actor });
  await deps.registry.audit.write({ actor, action: "node.decommission", objectType: "node", objectId: node.nodeId });
  return outcome;
}

/**
 * Stops the node's onboarding and its compensation if they run, and starts its offboarding unless one runs already:
 * duplicates (a repeated request, a redelivered event) find it running and change nothing. A compensation (a cancel, or
 * the sweeper's) is stopped too: left running, it would end beside the offboarding and mark the node Failed, where a
 * retry onboards it again. The offboarding removes everything the node's record holds, so nothing it was removing is
 * missed.
 */
export async function startOffboarding(
  deps: Pick<DecommissionDeps, "workflows">,
  nodeId: string,
  why: { reason: string; actor: string },
): Promise<{ kind: "started" | "alreadyRunning"; nodeId: string; instanceId: string }> {
  const instanceId = offboardInstanceId(nodeId);
  if (isRunning(await deps.workflows.status(instanceId))) return { kind: "alreadyRunning", nodeId, instanceId };
  for (const running of [nodeId, compensateInstanceId(nodeId)]) {
    if (isRunning(await deps.workflows.status(running))) await deps.workflows.terminate(running, why.reason);
  }
  const input: OffboardNodeInput = { nodeId, reason: why.reason, actor: why.actor, run: newRunId() };
  await deps.workflows.start(OFFBOARD_NODE, { instanceId, input });
  return { kind: "started", nodeId, instanceId };
}
