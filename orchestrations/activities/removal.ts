/**
 * The one way anything the service created for a node is removed — by compensation, offboarding, finalize (the
 * spent bootstrap token) and the sweeper's orphan removal. Absent counts as removed, so a repeat is harmless.
 */
import { isRestError } from "@azure/core-rest-pipeline";
import { API_VERSIONS } from "../clients/arm/arm-clients.js";
import { ARC_MACHINES, subscriptionOf, pathArg } from "../clients/arm/resource-id.js";
import type { Services } from "../services.js";
import type { CreatedObject } from "./created-objects.js";
import { record } from "./records.js";

export type RemovalDeps = Pick<Services, "mailbox" | "secrets" | "kube" | "arm" | "registry">;

/** Removes one created object and records the removal on the node (when the object was made for one). */
export async function removeCreatedObject(deps: RemovalDeps, nodeId: string, o: CreatedObject): Promise<void> {
  switch (o.kind) {
    case "mailbox":
      await deps.mailbox().close(nodeId);
      break;
    case "oneTimeSecret":
      await deps.secrets().remove(nodeId, o.id);
      await deps.secrets().remove(nodeId, `${o.id}.token`);
      break;
    case "bootstrapToken":
      await (await deps.kube(o.cluster)).client.deleteSecret("kube-system", o.id);
      break;
    case "kubeNode":
      await (await deps.kube(o.cluster)).client.deleteNode(o.id);
      break;
    case "roleAssignment":
      await absentIsDone(() => deps.arm().authorization(subscriptionOf(o.id)).roleAssignments.deleteById(pathArg(o.id)));
      break;
    case "arcMachine":
      await absentIsDone(() =>
        deps.arm().resources(subscriptionOf(o.id)).resources.beginDeleteByIdAndWait(pathArg(o.id), API_VERSIONS[ARC_MACHINES], { updateIntervalInMs: 1_000 }),
      );
      break;
  }
  await record(deps.registry, nodeId, o, "remove");
}

export function createRemovalActivities(deps: RemovalDeps) {
  return {
    /** Removes one created object; absent is done. Records the removal on the node. */
    removeObject: async (input: { nodeId: string; object: CreatedObject }): Promise<void> => removeCreatedObject(deps, input.nodeId, input.object),
  };
}

async function absentIsDone(op: () => Promise<unknown>): Promise<void> {
  try {
    await op();
  } catch (error) {
    if (!(isRestError(error) && error.statusCode === 404)) throw error;
  }
}
