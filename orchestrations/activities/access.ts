/**
 * Role grants for the node's Arc identity, from the pool's policy. Each is named deterministically over scope +
 * principal + role so a retried PUT is the same assignment, and so the service's assignments are told from others'.
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

/**
 * The name the service gives the node's grant of a role at a scope. An assignment is the service's only under this
 * name: the same grant under any other name was made by someone else (an operator, for monitoring, say) and is theirs.
 */
export function serviceRoleAssignmentName(scope: string, principalId: string, roleDefinitionGuid: string): string {
  return uuidv5(`${scope.toLowerCase()}|${principalId.toLowerCase()}|${roleDefinitionGuid.toLowerCase()}`, ROLE_ASSIGNMENT_NAMESPACE);
}

/**
 * Whether a role assignment, as ARM describes it, is the service's: under the service's name for its grant, or
 * created by the service's own principal. Removal (removal.ts) and the sweeper's orphan search both decide by this,
 * so neither ever deletes an assignment someone else made for the same grant.
 */
export function isServiceRoleAssignment(
  ra: { name?: string; scope?: string; principalId?: string; roleDefinitionId?: string; createdBy?: string },
  servicePrincipalId: string | undefined,
): boolean {
  if (servicePrincipalId !== undefined && ra.createdBy?.toLowerCase() === servicePrincipalId.toLowerCase()) return true;
  const role = ra.roleDefinitionId?.split("/").at(-1);
  if (!ra.name || !ra.scope || !ra.principalId || !role) return false;
  return ra.name.toLowerCase() === serviceRoleAssignmentName(ra.scope, ra.principalId, role);
}

export function createAccessActivities({ arm, registry }: AccessDeps) {
  return {
    /**
     * One role assignment: the service's, under its deterministic name (recorded before the PUT, for compensation).
     * PrincipalNotFound (the new identity not replicated yet) is thrown for the saga's retry policy. On
     * RoleAssignmentExists the same grant exists under another name: the node has its access, but the assignment is
     * someone else's (possibly an operator's own, made before the service saw the machine), so it is not recorded and
     * the answer is null — offboarding, compensation and the sweeper remove only what is recorded, and must never
     * remove it.
     */
    grantRole: async (input: { nodeId: string; scope: string; roleDefinitionGuid: string; principalId: string }): Promise<CreatedObject | null> => {
      const sub = subscriptionOf(input.scope);
      const authz = arm().authorization(sub);
      const name = serviceRoleAssignmentName(input.scope, input.principalId, input.roleDefinitionGuid);
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
      // ARM refuses a second assignment of one role to one principal at one scope, and a PUT of this name with the same
      // grant would have succeeded: the one that exists has another name. This name was never created: unrecord it.
      await record(registry, input.nodeId, obj, "remove");
      return null;
    },
  };
}
