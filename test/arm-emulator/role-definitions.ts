/**
 * Role definitions the emulator knows: the built-in roles the project touches (GUIDs from the reference doc §2.6)
 * plus any a test registers. A role assignment naming any other GUID fails with RoleDefinitionDoesNotExist.
 */
import { ArmError } from "./arm-error.js";
import type { RequestContext, Route } from "./router.js";
import type { HandlerResult } from "./wire.js";

export const BUILT_IN_ROLES = {
  "Azure Kubernetes Service Cluster User Role": "4abbcc35-e782-43d8-92c5-2d3f1bd2253f",
  "Azure Kubernetes Service Cluster Admin Role": "0ab0b1a8-8aac-4efd-b8c2-3ee1fb270be8",
  "Azure Kubernetes Service Cluster Monitoring User": "1afdec4b-e479-420e-99e7-f82237c7c5e6",
  "Azure Kubernetes Service Contributor Role": "ed7f3fbd-7b88-4dd4-9017-9adb7ce333f8",
  "Azure Kubernetes Service RBAC Reader": "7f6c6a51-bcf8-42ba-9220-52d62157d7db",
  "Azure Kubernetes Service RBAC Writer": "a7ffa36f-339b-4b5c-8bdf-e2c188b2c0eb",
  "Azure Kubernetes Service RBAC Admin": "3498e952-d568-435e-9b2c-8d77e338d7f7",
  "Azure Kubernetes Service RBAC Cluster Admin": "b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b",
  "Azure Connected Machine Onboarding": "b64e21ea-ac4e-4cdf-9dc9-5b892992bee7",
  "Azure Connected Machine Resource Administrator": "cd570a14-e51a-42ad-bac8-bafd67325302",
  "Azure Connected Machine Resource Manager": "f5819b54-e033-4d82-ac66-4fec3cbf3f4c",
  "Role Based Access Control Administrator": "f58310d9-a9f6-439a-9e8d-f62e7b41a168",
  "User Access Administrator": "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9",
  "Azure Service Bus Data Receiver": "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0",
  "Azure Service Bus Data Sender": "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39",
  "Azure Service Bus Data Owner": "090c5cfd-751d-490a-894a-3ce6f1109419",
  "Storage Table Data Contributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
  "Storage Queue Data Contributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
  "Storage Blob Data Owner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
  Reader: "acdd72a7-3385-48ef-bd42-f606fba81ae7",
  Contributor: "b24988ac-6180-42a0-ab88-20f7382dd24c",
  Owner: "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
} as const;

export type BuiltInRoleName = keyof typeof BUILT_IN_ROLES;

export interface RoleDefinition {
  guid: string;
  roleName: string;
  type: "BuiltInRole" | "CustomRole";
}

const ROLE_DEFINITION_ID = /^(?:\/subscriptions\/[^/]+)?\/providers\/Microsoft\.Authorization\/roleDefinitions\/([^/]+)$/i;
export const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The form callers usually send and the service returns for a subscription-scoped assignment. */
export function roleDefinitionId(guid: string, subscriptionId?: string): string {
  const prefix = subscriptionId === undefined ? "" : `/subscriptions/${subscriptionId}`;
  return `${prefix}/providers/Microsoft.Authorization/roleDefinitions/${guid}`;
}

export class RoleDefinitions {
  private readonly byGuid = new Map<string, RoleDefinition>();

  constructor() {
    for (const [roleName, guid] of Object.entries(BUILT_IN_ROLES)) this.byGuid.set(guid, { guid, roleName, type: "BuiltInRole" });
  }

  add(guid: string, roleName: string): RoleDefinition {
    const def: RoleDefinition = { guid: guid.toLowerCase(), roleName, type: "CustomRole" };
    this.byGuid.set(def.guid, def);
    return def;
  }

  get(guid: string): RoleDefinition | undefined {
    return this.byGuid.get(guid.toLowerCase());
  }

  /** Resolves a roleDefinitionId from a request body, or throws the 400 ARM answers with. */
  resolve(id: string): RoleDefinition {
    const guid = ROLE_DEFINITION_ID.exec(id.trim())?.[1];
    if (guid === undefined || !GUID.test(guid)) {
      throw new ArmError(400, "InvalidRoleDefinitionId", `The role definition ID '${id}' is not valid.`);
    }
    const def = this.get(guid);
    if (!def) throw new ArmError(400, "RoleDefinitionDoesNotExist", `The specified role definition with ID '${guid}' does not exist.`);
    return def;
  }

  routes(): Route[] {
    const one = /^(?<scope>(?:\/.*)?)\/providers\/Microsoft\.Authorization\/roleDefinitions\/(?<guid>[^/]+)$/i;
    return [{ name: "roleDefinitions.get", method: "GET", pattern: one, handle: (ctx) => this.getRoute(ctx) }];
  }

  private getRoute(ctx: RequestContext): HandlerResult {
    const guid = ctx.params["guid"]!;
    const def = this.get(guid);
    if (!def) throw new ArmError(404, "RoleDefinitionDoesNotExist", `The specified role definition with ID '${guid}' does not exist.`);
    const sub = /^\/subscriptions\/([^/]+)/i.exec(ctx.params["scope"] ?? "")?.[1];
    return {
      status: 200,
      body: {
        id: roleDefinitionId(def.guid, sub),
        name: def.guid,
        type: "Microsoft.Authorization/roleDefinitions",
        properties: {
          roleName: def.roleName,
          type: def.type,
          description: def.roleName,
          assignableScopes: ["/"],
          permissions: [{ actions: [], notActions: [], dataActions: [], notDataActions: [] }],
        },
      },
    };
  }
}
