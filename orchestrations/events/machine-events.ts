/**
 * Event Grid resource events for Arc machines. Resource-group and subscription topics deliver them at least once, in
 * any order, without the resource's body (so without its tags): every decision is made from the event and the
 * registry, and every action is idempotent. Implemented: a managed machine deleted by someone else offboards its node;
 * the service's own writes and deletes (recognised by the caller's object id) are ignored. Not yet implemented:
 * adopting a machine that azcmagent created — such events are audited as candidates.
 */
import { z } from "zod";
import { isRunning, type WorkflowClient } from "../enrolment/workflow-client.js";
import { OFFBOARD_NODE, offboardInstanceId, type OffboardNodeInput } from "../onboard/offboard-node.js";
import type { Registry } from "../registry/registry.js";

const OID = "http://schemas.microsoft.com/identity/claims/objectidentifier";

export const ResourceEventSchema = z.object({
  id: z.string().min(1),
  subject: z.string().min(1),
  eventType: z.string(),
  eventTime: z.string(),
  data: z.object({
    resourceUri: z.string().min(1),
    operationName: z.string(),
    claims: z.record(z.string(), z.string()).default({}),
    authorization: z.object({ evidence: z.record(z.string(), z.string()).optional() }).optional(),
  }),
});

const MACHINE = /^\/subscriptions\/[^/]+\/resourceGroups\/[^/]+\/providers\/Microsoft\.HybridCompute\/machines\/([^/]+)$/i;

export type MachineEventDecision =
  | { kind: "ignored"; reason: string }
  | { kind: "offboarding"; nodeId: string; instanceId: string }
  | { kind: "adoptionCandidate"; machineId: string };

export interface MachineEventDeps {
  registry: Registry;
  workflows: WorkflowClient;
  /** Object id of the service's own identity; its writes and deletes are the saga's and need no reaction. */
  serviceObjectId: string | undefined;
}

export async function handleMachineEvent(raw: unknown, deps: MachineEventDeps): Promise<MachineEventDecision> {
  const parsed = ResourceEventSchema.safeParse(raw);
  if (!parsed.success) return { kind: "ignored", reason: `not a resource event: ${parsed.error.issues[0]?.message ?? "invalid"}` };
  const event = parsed.data;
  const m = MACHINE.exec(event.data.resourceUri);
  if (!m) return { kind: "ignored", reason: "not an Arc machine" };
  const caller = event.data.claims[OID] ?? event.data.claims.oid ?? event.data.authorization?.evidence?.principalId;
  if (deps.serviceObjectId && caller?.toLowerCase() === deps.serviceObjectId.toLowerCase()) return { kind: "ignored", reason: "caused by the service itself" };

  if (event.eventType === "Microsoft.Resources.ResourceDeleteSuccess") {
    const nodeId = m[1]!;
    const node = await deps.registry.getNode(nodeId);
    const owned = node?.createdObjects.some((r) => r.toLowerCase() === `arcmachine:${event.data.resourceUri.toLowerCase()}`);
    if (!node || !owned) return { kind: "ignored", reason: "not a machine the service manages" };
    if (node.status === "Offboarded") return { kind: "ignored", reason: "node already offboarded" };
    const instanceId = offboardInstanceId(nodeId);
    // Duplicates and retries land here too: one offboarding per node at a time.
    if (!isRunning(await deps.workflows.status(instanceId))) {
      if (isRunning(await deps.workflows.status(nodeId))) await deps.workflows.terminate(nodeId, "Arc machine deleted outside the service");
      const input: OffboardNodeInput = { nodeId, reason: `Arc machine deleted outside the service (event ${event.id})`, actor: `event-grid:${caller ?? "unknown"}` };
      await deps.workflows.start(OFFBOARD_NODE, { instanceId, input });
      await deps.registry.audit({ actor: input.actor, action: "node.machine-deleted", objectType: "node", objectId: nodeId, details: { eventId: event.id } });
    }
    return { kind: "offboarding", nodeId, instanceId };
  }
  if (event.eventType === "Microsoft.Resources.ResourceWriteSuccess") {
    await deps.registry.audit({ actor: `event-grid:${caller ?? "unknown"}`, action: "machine.adoption-candidate", objectType: "node", objectId: m[1]!, details: { machineId: event.data.resourceUri, eventId: event.id } });
    return { kind: "adoptionCandidate", machineId: event.data.resourceUri };
  }
  return { kind: "ignored", reason: `event type ${event.eventType} is not handled` };
}
