/**
 * Microsoft.Authorization/roleAssignments (api 2022-04-01 shape) at any scope. Names are GUIDs unique in the tenant,
 * so reusing a name for another principal, role or scope is refused, and the same grant under a second name is a
 * conflict. A principal RBAC cannot resolve yet (unknown, deleted or still replicating) is refused unless the body
 * carries principalType, exactly the trap a saga assigning roles to a fresh managed identity falls into. A
 * subscription holds at most `perSubscriptionLimit` assignments (at subscription, resource group and resource scopes;
 * management-group and root scopes do not count), the next one is refused with ARM's RoleAssignmentLimitExceeded.
 */
import { z } from "zod";
import type { Clock } from "../support/index.js";
import { ArmError } from "./arm-error.js";
import type { PrincipalType } from "./credential.js";
import type { Directory } from "./directory.js";
import { pageOf } from "./paging.js";
import { idKey, isSameOrAncestor, scopeParts, trimScope } from "./resource-id.js";
import { parseRoleAssignmentFilter } from "./role-assignment-filter.js";
import { GUID, roleDefinitionId, type RoleDefinitions } from "./role-definitions.js";
import type { RequestContext, Route } from "./router.js";
import type { Tenancy } from "./tenancy.js";
import type { HandlerResult } from "./wire.js";

export const ROLE_ASSIGNMENT_TYPE = "Microsoft.Authorization/roleAssignments";

export interface RoleAssignmentRecord {
  id: string;
  name: string;
  scope: string;
  roleDefinitionGuid: string;
  principalId: string;
  principalType: PrincipalType;
  description: string | null;
  condition: string | null;
  conditionVersion: string | null;
  delegatedManagedIdentityResourceId: string | null;
  createdOn: number;
  updatedOn: number;
  createdBy: string;
  updatedBy: string;
}

export interface RoleAssignmentsDeps {
  clock: Clock;
  tenancy: Tenancy;
  directory: Directory;
  roleDefinitions: RoleDefinitions;
  tenantId: string;
  pageSize: number;
  /** Role assignments a subscription may hold (ARM: 4,000; see README for the source). */
  perSubscriptionLimit: number;
}

const PRINCIPAL_TYPES: readonly PrincipalType[] = ["User", "Group", "ServicePrincipal", "ForeignGroup", "Device"];

const putBody = z.object({
  properties: z.looseObject({
    roleDefinitionId: z.string().min(1),
    principalId: z.string().min(1),
    principalType: z.string().nullish(),
    description: z.string().nullish(),
    condition: z.string().nullish(),
    conditionVersion: z.string().nullish(),
    delegatedManagedIdentityResourceId: z.string().nullish(),
  }),
});

export class RoleAssignments {
  /** Keyed by lower-cased name: names are unique across scopes. */
  private readonly byName = new Map<string, RoleAssignmentRecord>();
  /** Assignments per lower-cased subscription id, kept with `byName`: the cap is checked on every new assignment. */
  private readonly perSubscription = new Map<string, number>();
  /** Assignments per grant (scope, role, principal, condition), kept with `byName`: a second name for a grant is a conflict. */
  private readonly perGrant = new Map<string, number>();

  constructor(private readonly deps: RoleAssignmentsDeps) {}

  routes(): Route[] {
    const one = /^(?<scope>(?:\/.*)?)\/providers\/Microsoft\.Authorization\/roleAssignments\/(?<name>[^/]+)$/i;
    const all = /^(?<scope>(?:\/.*)?)\/providers\/Microsoft\.Authorization\/roleAssignments$/i;
    return [
      { name: "roleAssignments.get", method: "GET", pattern: one, handle: (ctx) => this.get(ctx) },
      { name: "roleAssignments.put", method: "PUT", pattern: one, handle: (ctx) => this.put(ctx) },
      { name: "roleAssignments.delete", method: "DELETE", pattern: one, handle: (ctx) => this.delete(ctx) },
      { name: "roleAssignments.list", method: "GET", pattern: all, handle: (ctx) => this.listForScope(ctx) },
    ];
  }

  list(): RoleAssignmentRecord[] {
    return [...this.byName.values()];
  }

  reset(): void {
    this.byName.clear();
    this.perSubscription.clear();
    this.perGrant.clear();
  }

  private get(ctx: RequestContext): HandlerResult {
    return { status: 200, body: this.render(this.require(ctx)) };
  }

  private delete(ctx: RequestContext): HandlerResult {
    const scope = this.scopeOf(ctx);
    const existing = this.byName.get(ctx.params["name"]!.toLowerCase());
    if (!existing || idKey(existing.scope) !== idKey(scope)) return { status: 204 };
    this.byName.delete(existing.name.toLowerCase());
    this.countIn(existing.scope, -1);
    this.countGrant(existing, -1);
    return { status: 200, body: this.render(existing) };
  }

  private put(ctx: RequestContext): HandlerResult {
    const scope = this.scopeOf(ctx);
    const name = ctx.params["name"]!;
    if (!GUID.test(name)) {
      throw new ArmError(400, "InvalidRoleAssignmentId", `The role assignment ID '${name}' is not valid. The role assignment ID must be a GUID.`);
    }
    const parsed = putBody.safeParse(ctx.body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new ArmError(400, "InvalidRequestContent", `The request content was invalid: '${issue?.path.join(".") ?? ""}' ${issue?.message ?? ""}.`);
    }
    const props = parsed.data.properties;
    if (!GUID.test(props.principalId)) {
      throw new ArmError(400, "InvalidPrincipalId", "A valid principal ID must be provided for role assignment.");
    }
    const requestedType = principalTypeOf(props.principalType);
    const role = this.deps.roleDefinitions.resolve(props.roleDefinitionId);
    const condition = props.condition ?? null;
    const conditionVersion = condition === null ? null : (props.conditionVersion ?? "2.0");
    const now = this.deps.clock.now();

    const existing = this.byName.get(name.toLowerCase());
    if (existing) {
      if (
        idKey(existing.scope) !== idKey(scope) ||
        existing.principalId.toLowerCase() !== props.principalId.toLowerCase() ||
        existing.roleDefinitionGuid !== role.guid
      ) {
        throw new ArmError(400, "RoleAssignmentUpdateNotPermitted", "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.");
      }
      existing.description = props.description ?? null;
      this.countGrant(existing, -1);
      existing.condition = condition;
      this.countGrant(existing, 1);
      existing.conditionVersion = conditionVersion;
      if (requestedType) existing.principalType = requestedType;
      existing.updatedOn = now;
      existing.updatedBy = ctx.caller.principalId;
      return { status: 200, body: this.render(existing) };
    }

    const duplicate = (this.perGrant.get(grantKey({ scope, roleDefinitionGuid: role.guid, principalId: props.principalId, condition })) ?? 0) > 0;
    if (duplicate) throw new ArmError(409, "RoleAssignmentExists", "The role assignment already exists.");

    // Without principalType ARM looks the principal up in the directory, which may not have replicated it yet.
    if (!requestedType && !this.deps.directory.isResolvable(props.principalId)) {
      throw new ArmError(
        400,
        "PrincipalNotFound",
        `Principal ${props.principalId.replace(/-/g, "").toLowerCase()} does not exist in the directory ${this.deps.tenantId}. Check that you have the correct principal ID. If you are creating this principal and then immediately assigning a role, this error might be related to a replication delay. In this case, set the role assignment principalType property to a value, such as ServicePrincipal, User, or Group.  See https://aka.ms/docs-principaltype`,
      );
    }
    const subscriptionId = scopeParts(scope).subscriptionId;
    if (subscriptionId !== undefined && this.countInSubscription(subscriptionId) >= this.deps.perSubscriptionLimit) {
      throw new ArmError(400, "RoleAssignmentLimitExceeded", "No more role assignments can be created.");
    }
    const record: RoleAssignmentRecord = {
      id: `${scope === "/" ? "" : scope}/providers/Microsoft.Authorization/roleAssignments/${name}`,
      name,
      scope,
      roleDefinitionGuid: role.guid,
      principalId: props.principalId,
      principalType: requestedType ?? this.deps.directory.get(props.principalId)?.type ?? "ServicePrincipal",
      description: props.description ?? null,
      condition,
      conditionVersion,
      delegatedManagedIdentityResourceId: props.delegatedManagedIdentityResourceId ?? null,
      createdOn: now,
      updatedOn: now,
      createdBy: ctx.caller.principalId,
      updatedBy: ctx.caller.principalId,
    };
    this.byName.set(name.toLowerCase(), record);
    this.countIn(scope, 1);
    this.countGrant(record, 1);
    return { status: 201, body: this.render(record) };
  }

  /** What counts toward a subscription's cap: assignments at the subscription or anything below it. */
  countInSubscription(subscriptionId: string): number {
    return this.perSubscription.get(subscriptionId.toLowerCase()) ?? 0;
  }

  private countIn(scope: string, delta: number): void {
    const sub = scopeParts(scope).subscriptionId?.toLowerCase();
    if (sub !== undefined) this.perSubscription.set(sub, (this.perSubscription.get(sub) ?? 0) + delta);
  }

  private countGrant(ra: RoleAssignmentRecord, delta: number): void {
    const key = grantKey(ra);
    const n = (this.perGrant.get(key) ?? 0) + delta;
    if (n > 0) this.perGrant.set(key, n);
    else this.perGrant.delete(key);
  }

  private listForScope(ctx: RequestContext): HandlerResult {
    const scope = this.scopeOf(ctx);
    const filter = parseRoleAssignmentFilter(ctx.query.get("$filter"));
    const items = this.list().filter((ra) => {
      const above = isSameOrAncestor(ra.scope, scope);
      const below = isSameOrAncestor(scope, ra.scope);
      if (!(filter.atScope ? above : above || below)) return false;
      return filter.principalIds.every((p) => p === ra.principalId.toLowerCase());
    });
    return {
      status: 200,
      body: pageOf(
        items.map((ra) => this.render(ra)),
        ctx,
        this.deps.pageSize,
      ),
    };
  }

  private require(ctx: RequestContext): RoleAssignmentRecord {
    const scope = this.scopeOf(ctx);
    const name = ctx.params["name"]!;
    const existing = this.byName.get(name.toLowerCase());
    if (!existing || idKey(existing.scope) !== idKey(scope)) {
      throw new ArmError(404, "RoleAssignmentNotFound", `The role assignment '${name}' is not found.`);
    }
    return existing;
  }

  /** The scope from the path; subscriptions and resource groups in it must exist. */
  private scopeOf(ctx: RequestContext): string {
    const scope = trimScope(ctx.params["scope"] ?? "/");
    const { subscriptionId, resourceGroup } = scopeParts(scope);
    if (subscriptionId !== undefined) {
      if (resourceGroup !== undefined) this.deps.tenancy.requireResourceGroup(subscriptionId, resourceGroup);
      else this.deps.tenancy.requireSubscription(subscriptionId);
    }
    return scope;
  }

  render(ra: RoleAssignmentRecord): Record<string, unknown> {
    return {
      properties: {
        roleDefinitionId: roleDefinitionId(ra.roleDefinitionGuid, scopeParts(ra.scope).subscriptionId),
        principalId: ra.principalId,
        principalType: ra.principalType,
        scope: ra.scope,
        condition: ra.condition,
        conditionVersion: ra.conditionVersion,
        createdOn: new Date(ra.createdOn).toISOString(),
        updatedOn: new Date(ra.updatedOn).toISOString(),
        createdBy: ra.createdBy,
        updatedBy: ra.updatedBy,
        delegatedManagedIdentityResourceId: ra.delegatedManagedIdentityResourceId,
        description: ra.description,
      },
      id: ra.id,
      type: ROLE_ASSIGNMENT_TYPE,
      name: ra.name,
    };
  }
}

/** What makes two assignments the same grant: scope (case-insensitive), role, principal (case-insensitive), condition. */
const grantKey = (ra: Pick<RoleAssignmentRecord, "scope" | "roleDefinitionGuid" | "principalId" | "condition">): string =>
  JSON.stringify([idKey(ra.scope), ra.roleDefinitionGuid, ra.principalId.toLowerCase(), ra.condition ?? ""]);

function principalTypeOf(value: string | null | undefined): PrincipalType | undefined {
  if (value === null || value === undefined) return undefined;
  const match = PRINCIPAL_TYPES.find((t) => t.toLowerCase() === value.toLowerCase());
  if (!match) {
    throw new ArmError(400, "InvalidPrincipalType", `The principal type '${value}' is not valid. Valid values are: ${PRINCIPAL_TYPES.join(", ")}.`);
  }
  return match;
}
