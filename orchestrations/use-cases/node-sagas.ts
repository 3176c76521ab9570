/**
 * A node has up to three sagas, each under its own instance id: its onboarding (`<nodeId>`), the compensation of a
 * cancelled or stuck onboarding (`<nodeId>:compensate`) and its offboarding (`<nodeId>:offboard`). Each writes the
 * node's status and removes what the node's record holds, so no two may run at once: whatever starts one asks here
 * first which of the others still runs. The status writes refuse statuses their saga does not own (records.ts), which
 * keeps a late write from a saga being stopped from undoing the one that replaced it.
 */
import type { NodeRecord } from "../clients/registry/model.js";
import { isRunning, type WorkflowClient } from "../clients/workflow-client.js";
import { offboardInstanceId } from "../offboard/offboard-node.js";
import { compensateInstanceId } from "../onboard/compensate.js";

export type NodeSaga = "onboarding" | "compensation" | "offboarding";

export const ALL_NODE_SAGAS: readonly NodeSaga[] = ["onboarding", "compensation", "offboarding"];

export function nodeSagaInstanceId(nodeId: string, saga: NodeSaga): string {
  if (saga === "compensation") return compensateInstanceId(nodeId);
  if (saga === "offboarding") return offboardInstanceId(nodeId);
  return nodeId;
}

/** The instance id of the first of the node's `sagas` that still runs, or undefined when none does. */
export async function runningSaga(
  workflows: Pick<WorkflowClient, "status">,
  nodeId: string,
  sagas: readonly NodeSaga[] = ALL_NODE_SAGAS,
): Promise<string | undefined> {
  for (const saga of sagas) {
    const instanceId = nodeSagaInstanceId(nodeId, saga);
    if (isRunning(await workflows.status(instanceId))) return instanceId;
  }
  return undefined;
}

/**
 * Why a new onboarding of the node must wait, or undefined when it may start now. Enrolment asks before a node starts
 * over (Failed or Offboarded, its own key) and before a rekey (clone replace, an approved claim), and refuses with a
 * Retry-After: a run that is still finishing (announcing its failure, say) would otherwise make the start a no-op and
 * leave the node Enrolling with no saga, and an onboarding started beside a running offboarding would race it for the
 * node's status and objects. A node Offboarding waits even with no offboarding running: the sweeper resumes it.
 *
 * `except` names a saga the caller deals with itself: a rekey stops a running onboarding of the old key and asks again.
 */
export async function onboardingMustWait(
  deps: { workflows: Pick<WorkflowClient, "status"> },
  node: Pick<NodeRecord, "nodeId" | "status">,
  options: { except?: NodeSaga } = {},
): Promise<string | undefined> {
  if (node.status === "Offboarding") return `node '${node.nodeId}' is being offboarded; it can onboard again once that has finished`;
  const running = await runningSaga(
    deps.workflows,
    node.nodeId,
    ALL_NODE_SAGAS.filter((s) => s !== options.except),
  );
  return running === undefined ? undefined : `the node's previous run '${running}' is still finishing; retry shortly`;
}
