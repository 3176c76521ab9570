/**
 * The node's Arc machine: created by the service under the node's name (PUT, sync 200, identity SystemAssigned,
 * tagged as the service's), or adopted from azcmagent and only read. Either way the saga needs the identity's
 * principal, which ARM may fill in after the PUT returns.
 */
import { API_VERSIONS } from "../clients/arm/arm-clients.js";
import { ARC_MACHINES, subscriptionOf, pathArg } from "../clients/arm/resource-id.js";
import type { Services } from "../services.js";
import { MANAGED_BY, type CreatedObject } from "./created-objects.js";
import { machineIdFor, type NodeContext } from "./node-context.js";
import { record } from "./records.js";

export type ArcDeps = Pick<Services, "arm" | "registry">;

export function createArcActivities({ arm, registry }: ArcDeps) {
  return {
    /** PUT of the Arc machine (sync 200); returns its id and, when ARM already has it, the identity's principal. */
    putArcMachine: async (input: { context: NodeContext }): Promise<{ machine: CreatedObject; principalId: string | null }> => {
      const { context } = input;
      const id = machineIdFor(context);
      const resources = arm().resources(subscriptionOf(id)).resources;
      const body = {
        location: context.arc.location,
        identity: { type: "SystemAssigned" as const },
        tags: { ...context.arc.tags, "managed-by": MANAGED_BY, "flexnode-node": context.nodeId, "flexnode-pool": context.pool },
        properties: { osType: "linux" },
      };
      // Recorded before the PUT: a crash between the PUT and the record must still leave compensation knowing the machine.
      // The pacer is asked first, so an attempt it holds back writes nothing down.
      const machine: CreatedObject = { kind: "arcMachine", id };
      await arm().reserveWrite("PUT", id);
      await record(registry, context.nodeId, machine, "add");
      const result = await resources.beginCreateOrUpdateByIdAndWait(pathArg(id), API_VERSIONS[ARC_MACHINES], body, { updateIntervalInMs: 1_000 });
      return { machine, principalId: result.identity?.principalId ?? null };
    },

    getArcPrincipal: async (input: { machineId: string }): Promise<string | null> => {
      const resources = arm().resources(subscriptionOf(input.machineId)).resources;
      const m = await resources.getById(pathArg(input.machineId), API_VERSIONS[ARC_MACHINES]);
      return m.identity?.principalId ?? null;
    },
  };
}
