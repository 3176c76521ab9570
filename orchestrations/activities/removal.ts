/**
 * The one way anything the service created for a node is removed — by compensation, offboarding, finalize (the
 * spent bootstrap token) and the sweeper's orphan removal. Absent counts as removed, so a repeat is harmless.
 * Everything goes in one call except the Arc machine, whose DELETE ARM runs as a long-running operation: the first
 * call starts it and answers how to follow it, `checkRemoval` asks once, and the saga waits in between on a durable
 * timer (remove-object.ts). The removal is recorded on the node when it is done, not when it is asked for.
 */
import { isRestError } from "@azure/core-rest-pipeline";
import { checkMachineDeletion, startMachineDeletion, type DeletionProgress } from "../clients/arm/machine-deletion.js";
import { subscriptionOf, pathArg } from "../clients/arm/resource-id.js";
import { NODE_ID_LABEL } from "../clients/kube/index.js";
import type { Services } from "../services.js";
import { isServiceRoleAssignment } from "./access.js";
import type { CreatedObject } from "./created-objects.js";
import { record } from "./records.js";

export type RemovalDeps = Pick<Services, "mailbox" | "secrets" | "kube" | "arm" | "registry" | "settings">;

/** Removes one created object, or starts removing it (an Arc machine); records the removal on the node once done. */
export async function removeCreatedObject(deps: RemovalDeps, nodeId: string, o: CreatedObject): Promise<DeletionProgress> {
  switch (o.kind) {
    case "mailbox":
      await deps.mailbox().close(nodeId);
      break;
    case "oneTimeSecret":
      await deps.secrets().remove(nodeId, o.id);
      await deps.secrets().remove(nodeId, `${o.id}.token`);
      break;
    case "bootstrapToken":
      // The name holds a 6-character id the cluster's other tokens share: only the Secret labelled with this node
      // is its own (a name recorded before its create found another node's Secret there must not take that one).
      await (await deps.kube(o.cluster)).client.deleteSecretLabelled("kube-system", o.id, { [NODE_ID_LABEL]: nodeId });
      break;
    case "kubeNode":
      await (await deps.kube(o.cluster)).client.deleteNode(o.id);
      break;
    case "roleAssignment": {
      // Only the service's own assignments are deleted (isServiceRoleAssignment). A node's record from before grants
      // were told apart may hold someone else's, adopted on RoleAssignmentExists: that one is only dropped from the
      // record. One read per grant removed; absent is done.
      const authz = deps.arm().authorization(subscriptionOf(o.id));
      const found = await absentIsUndefined(() => authz.roleAssignments.getById(pathArg(o.id)));
      if (found && isServiceRoleAssignment(found, deps.settings.SERVICE_PRINCIPAL_ID))
        await absentIsDone(() => authz.roleAssignments.deleteById(pathArg(o.id)));
      break;
    }
    case "arcMachine": {
      const arm = deps.arm();
      const progress = await startMachineDeletion(arm.resources(subscriptionOf(o.id)), arm.endpoint, o.id);
      if (!progress.done) return progress;
      break;
    }
  }
  await record(deps.registry, nodeId, o, "remove");
  return { done: true };
}

export function createRemovalActivities(deps: RemovalDeps) {
  return {
    /** Removes one created object (absent is done), or starts an Arc machine's deletion and says how to follow it. */
    removeObject: async (input: { nodeId: string; object: CreatedObject }): Promise<DeletionProgress> => removeCreatedObject(deps, input.nodeId, input.object),
    /** One look at a deletion in progress; records the removal when it is done. Never waits: the saga does. */
    checkRemoval: async (input: {
      nodeId: string;
      object: CreatedObject;
      monitor: { url: string; kind: "asyncOperation" | "location" };
    }): Promise<DeletionProgress> => {
      const arm = deps.arm();
      const progress = await checkMachineDeletion(arm.resources(subscriptionOf(input.object.id)), arm.endpoint, input.object.id, input.monitor);
      if (progress.done) await record(deps.registry, input.nodeId, input.object, "remove");
      return progress;
    },
  };
}

async function absentIsUndefined<T>(op: () => Promise<T>): Promise<T | undefined> {
  try {
    return await op();
  } catch (error) {
    if (isRestError(error) && error.statusCode === 404) return undefined;
    throw error;
  }
}

async function absentIsDone(op: () => Promise<unknown>): Promise<void> {
  try {
    await op();
  } catch (error) {
    if (!(isRestError(error) && error.statusCode === 404)) throw error;
  }
}
