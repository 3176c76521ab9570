/**
 * Event Grid resource events for Arc machines. Resource-group and subscription topics deliver them at least once, in
 * any order, without the resource's body (so without its tags): every decision is made from the event and the
 * registry, and every action is idempotent. Implemented: a managed machine deleted by someone else offboards its node,
 * whether the service created it or adopted it; the service's own writes and deletes (recognised by the caller's
 * object id) are ignored; a machine azcmagent created with the tags an adopt pool's enrolment handed out starts that
 * node's saga in adopt mode. Since write events carry no tags, the handler reads the machine: a delete that overtook
 * its write finds nothing and does nothing. A delete is acted on only if the machine is still gone when it arrives: a
 * re-enrolled node gets a machine of the same id again (the service names it by the node id), and a duplicate or late
 * delivery of the old delete, which Event Grid may send for a day, must not offboard the node it now belongs to.
 * Tag values and machine names are anyone's to write, so none becomes a registry key until it parses as one.
 */
import type { WorkflowClient } from "../clients/workflow-client.js";
import { parseMachineId, parseResourceGroupId, ResourceIdError, type ResourceRef } from "../clients/arm/resource-id.js";
import { startOffboarding } from "./decommission.js";
import { ensureSaga } from "./enrol.js";
import { MANAGED_BY } from "../activities/created-objects.js";
import type { Registry } from "../clients/registry/registry.js";
import { PoolName } from "../clients/registry/model.js";
import { isNodeId } from "../../contract/node-id.js";
import { parseResourceEvent, RESOURCE_DELETE_SUCCESS, RESOURCE_WRITE_SUCCESS } from "./resource-event.js";

/** Whether the machine lies in the resource group; ids compare case-insensitively, as ARM's do. */
function inResourceGroup(machineId: string, resourceGroupId: string): boolean {
  const machine = asMachine(machineId);
  const group = parseResourceGroupId(resourceGroupId);
  return (
    machine !== undefined &&
    machine.subscriptionId.toLowerCase() === group.subscriptionId.toLowerCase() &&
    machine.resourceGroup.toLowerCase() === group.resourceGroup.toLowerCase()
  );
}

const asMachine = (resourceUri: string): ResourceRef | undefined => {
  try {
    return parseMachineId(resourceUri);
  } catch (error) {
    if (error instanceof ResourceIdError) return undefined;
    throw error;
  }
};

export type MachineEventDecision =
  | { kind: "ignored"; reason: string }
  | { kind: "offboarding"; nodeId: string; instanceId: string }
  | { kind: "adopting"; nodeId: string; instanceId: string }
  | { kind: "adoptionCandidate"; machineId: string; reason: string };

export interface MachineEventDeps {
  registry: Registry;
  workflows: WorkflowClient;
  /** Object id of the service's own identity; its writes and deletes are the saga's and need no reaction. */
  serviceObjectId: string | undefined;
  /** The machine's tags as ARM has them now; undefined when it no longer exists. */
  machineTags(resourceId: string): Promise<Record<string, string> | undefined>;
  now(): Date;
}

/** Throws UnparseableEventError for an event neither Event Grid schema describes; the trigger surfaces it. */
export async function handleMachineEvent(raw: unknown, deps: MachineEventDeps): Promise<MachineEventDecision> {
  const event = parseResourceEvent(raw);
  if ("ignoredType" in event) return { kind: "ignored", reason: `event type ${event.ignoredType} is not handled` };
  const machine = asMachine(event.resourceUri);
  if (!machine) return { kind: "ignored", reason: "not an Arc machine" };
  const caller = event.caller;
  if (deps.serviceObjectId && caller?.toLowerCase() === deps.serviceObjectId.toLowerCase()) return { kind: "ignored", reason: "caused by the service itself" };

  if (event.type === RESOURCE_DELETE_SUCCESS) {
    const node = await managingNode(deps.registry, machine.name, event.resourceUri);
    if (!node) return { kind: "ignored", reason: "not a machine the service manages" };
    const nodeId = node.nodeId;
    if (node.status === "Offboarded") return { kind: "ignored", reason: "node already offboarded" };
    // Deliveries are unordered and repeated: the delete of a machine the node has again since is old news.
    if (await deps.machineTags(event.resourceUri)) return { kind: "ignored", reason: "the machine exists: the delete is a stale or repeated delivery" };
    // Duplicates and retries land here too: one offboarding per node at a time.
    const actor = `event-grid:${caller ?? "unknown"}`;
    const started = await startOffboarding(deps, nodeId, { reason: `Arc machine deleted outside the service (event ${event.id})`, actor });
    if (started.kind === "started")
      await deps.registry.audit.write({ actor, action: "node.machine-deleted", objectType: "node", objectId: nodeId, details: { eventId: event.id } });
    return { kind: "offboarding", nodeId, instanceId: started.instanceId };
  }
  if (event.type === RESOURCE_WRITE_SUCCESS) return adopt(deps, event.resourceUri, caller, event.id);
  return { kind: "ignored", reason: `event type ${event.type} is not handled` };
}

/**
 * The node whose machine this is: one the service created is named by its node id and recorded among the node's
 * objects; one it adopted is named by azcmagent and found through the registry's machine index.
 */
async function managingNode(registry: Registry, name: string, machineId: string) {
  // Looked up only as a node id: another name may hold characters Azure Tables refuses in a key (a 400, retried by
  // Event Grid for a day), and ARM names compare case-insensitively.
  const named = isNodeId(name.toLowerCase()) ? await registry.nodes.get(name.toLowerCase()) : undefined;
  if (named?.createdObjects.some((r) => r.toLowerCase() === `arcmachine:${machineId.toLowerCase()}`)) return named;
  return registry.nodes.getByAdoptedMachine(machineId);
}

/**
 * A write by someone other than the service: if azcmagent created the machine for an enrolled node of an adopt pool
 * (tags flexnode-pool and flexnode-node, as enrolment told the node), record it on the node and start its saga in
 * adopt mode. The saga's instance id is the node's, so duplicates and later writes of the same machine (azcmagent
 * heartbeats update it) find the saga running or the node past Enrolling, and change nothing.
 */
async function adopt(deps: MachineEventDeps, machineId: string, caller: string | undefined, eventId: string): Promise<MachineEventDecision> {
  const tags = await deps.machineTags(machineId);
  if (!tags) return { kind: "ignored", reason: "the machine no longer exists" };
  if (tags["managed-by"] === MANAGED_BY) return { kind: "ignored", reason: "created by the service" };
  const poolName = tags["flexnode-pool"];
  const nodeId = tags["flexnode-node"];
  if (!poolName || !nodeId) return { kind: "ignored", reason: "not tagged for a flexnode pool" };
  // Tag values are free text to whoever may write tags ('/', '#', '?' included): only a pool name and a node id of the
  // forms the service hands out may become registry keys; anything else is refused like any other misfit.
  const parsed = PoolName.safeParse(poolName).success && isNodeId(nodeId);
  const candidate = async (reason: string): Promise<MachineEventDecision> => {
    await deps.registry.audit.write({
      actor: `event-grid:${caller ?? "unknown"}`,
      action: "machine.adoption-refused",
      objectType: "node",
      objectId: nodeId,
      details: { machineId, eventId, reason },
    });
    return { kind: "adoptionCandidate", machineId, reason };
  };
  if (!parsed) return candidate("the machine's flexnode-pool and flexnode-node tags are not a pool name and a node id");
  const [pool, node] = await Promise.all([deps.registry.pools.get(poolName), deps.registry.nodes.getInPool(poolName, nodeId)]);
  if (!pool || !node) return candidate(`no node ${nodeId} is enrolled in pool ${poolName}`);
  if (pool.arc.mode !== "adopt") return candidate(`pool ${poolName} creates its nodes' machines; it adopts none`);
  // Tags are anyone's to write: whoever may onboard Arc machines into some other resource group this service hears
  // from could tag one for a pending node and have the pool's role grants given to that machine's identity. Only a
  // machine in the pool's own resource group, where the pool's owner decides who onboards, is the node's.
  if (!inResourceGroup(machineId, pool.arc.resourceGroupId))
    return candidate(`the machine is not in pool ${poolName}'s resource group ${pool.arc.resourceGroupId}`);
  if (node.arcMachineId && node.arcMachineId.toLowerCase() !== machineId.toLowerCase())
    return candidate(`node ${nodeId} has adopted ${node.arcMachineId} already`);
  if (node.status !== "Enrolling") return { kind: "ignored", reason: `node ${nodeId} is ${node.status}` };
  const adopted = node.arcMachineId
    ? node
    : await deps.registry.nodes.update(
        node,
        (n) => (n.arcMachineId ? undefined : { arcMachineId: machineId }),
        `event-grid:${caller ?? "unknown"}`,
        "node.machine-adopted",
        { expect: ["Enrolling"] },
      );
  await ensureSaga({ registry: deps.registry, workflows: deps.workflows, now: deps.now }, adopted);
  return { kind: "adopting", nodeId, instanceId: nodeId };
}
