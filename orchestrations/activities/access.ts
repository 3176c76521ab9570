/**
 * Role grants for the node's Arc identity, from the pool's policy. Each is named deterministically over scope +
 * principal + role so a retried PUT is the same assignment.
 */
import { isRestError } from "@azure/core-rest-pipeline";
import { v5 as uuidv5 } from "uuid";
import { subscriptionOf, pathArg } from "../clients/arm/resource-id.js";
import type { Services } from "../services.js";
import type { CreatedObject } from "./created-objects.js";
import { record } from "./records.js";

export type AccessDeps = Pick<Services, "arm" | "registry">;

/** Any stable namespace works; what matters is that the name covers scope, principal and role. */
const ROLE_ASSIGNMENT_NAMESPACE = "5e0c8f2a-6f0e-4f7b-9a53-2f1d8c3b7a10";

export function createAccessActivities({ arm, registry }: AccessDeps) {
  return {
    /**
     * One role assignment. PrincipalNotFound (the new identity not replicated yet) is thrown for the saga's retry
     * policy; RoleAssignmentExists (the same grant under another name) is adopted by looking it up.
     */
    grantRole: async (input: { nodeId: string; scope: string; roleDefinitionGuid: string; principalId: string }): Promise<CreatedObject> => {
      const sub = subscriptionOf(input.scope);
      const authz = arm().authorization(sub);
      const name = uuidv5(
        `${input.scope.toLowerCase()}|${input.principalId.toLowerCase()}|${input.roleDefinitionGuid.toLowerCase()}`,
        ROLE_ASSIGNMENT_NAMESPACE,
      );
      const roleDefinitionId = `/subscriptions/${sub}/providers/Microsoft.Authorization/roleDefinitions/${input.roleDefinitionGuid}`;
      const obj: CreatedObject = { kind: "roleAssignment", id: `${input.scope}/providers/Microsoft.Authorization/roleAssignments/${name}` };
      // The pacer first: an attempt it holds back records nothing (the record precedes the PUT, for compensation).
      await arm().reserveWrite("PUT", obj.id);
      await record(registry, input.nodeId, obj, "add");
      try {
        await authz.roleAssignments.create(pathArg(input.scope), name, {
          roleDefinitionId,
          principalId: input.principalId,
          principalType: "ServicePrincipal",
          description: `flexnode node ${input.nodeId}`,
        });
        return obj;
      } catch (error) {
        if (!(isRestError(error) && error.code === "RoleAssignmentExists")) throw error;
      }
      for await (const existing of authz.roleAssignments.listForScope(pathArg(input.scope), { filter: `principalId eq '${input.principalId}'` })) {
        if (
          existing.roleDefinitionId?.toLowerCase().endsWith(input.roleDefinitionGuid.toLowerCase()) &&
          existing.scope?.toLowerCase() === input.scope.toLowerCase()
        ) {
          const adopted: CreatedObject = { kind: "roleAssignment", id: existing.id! };
          await record(registry, input.nodeId, obj, "remove");
          await record(registry, input.nodeId, adopted, "add");
          return adopted;
        }
      }
      throw new Error(`RoleAssignmentExists for ${input.principalId} at ${input.scope}, but no such assignment is listed`);
    },
  };
}
