/**
 * Whether a pool's per-node role grants fit ARM's role-assignment cap: 4,000 per subscription, counting assignments at
 * the subscription, its resource groups and resources (MicrosoftDocs/azure-docs
 * articles/role-based-access-control/troubleshoot-limits.md: fixed, cannot be increased). Each node's Arc identity gets
 * one assignment per grant, in the subscription of the grant's scope, so a pool of N nodes with g grants there needs
 * N × g of them on top of what the subscription already holds. Past the cap ARM refuses the saga's grant with
 * RoleAssignmentLimitExceeded, a node at a time, after its Arc machine exists; refusing the pool up front says why
 * once, before any node waits on it.
 *
 * Why not grants to a group instead (one assignment per pool, nodes added as members): group membership is a
 * Microsoft Graph write with its own permission (GroupMember.ReadWrite.All) and replication delay on every node, and
 * the emulators have no Graph; the per-node grant stays, bounded here.
 *
 * Counted now, not reserved: other pools' future nodes, and anyone else assigning roles in the subscription, still
 * draw from the same budget; ARM's own refusal stays the backstop. Counted where the service may read (the roles
 * pool.bicep grants it, checked by test/infra/what-if.test.ts): at the pool's grant scopes, which ARM lists with every
 * assignment above (the resource groups, the subscription) and below them. That includes every grant the service's own
 * nodes get in those scopes; assignments in other resource groups of the subscription are not visible to it and not
 * counted — a subscription-wide count would need roleAssignments/read on the subscription.
 */
import type { ArmClients } from "../clients/arm/arm-clients.js";
import { pathArg, subscriptionOf } from "../clients/arm/resource-id.js";
import type { PoolSpec } from "../clients/registry/model.js";

export const ROLE_ASSIGNMENTS_PER_SUBSCRIPTION = 4_000;

export interface BudgetShortfall {
  subscriptionId: string;
  existingRoleAssignments: number;
  grantsPerNode: number;
  /** The nodes checked for: the pool's maxNodes, or one when it declares none. */
  nodes: number;
  limit: number;
  /** The most nodes with these grants the subscription can still take. */
  maxNodesThatFit: number;
}

type Spec = Pick<PoolSpec, "clusterResourceId" | "arc" | "roleGrants" | "maxNodes">;

/** Per-node grants of a pool per subscription (lower-case id). */
function grantsBySubscription(spec: Spec): Map<string, number> {
  const perSubscription = new Map<string, number>();
  for (const grant of spec.roleGrants) {
    const scope = grant.scope === "cluster" ? spec.clusterResourceId : spec.arc.resourceGroupId;
    const sub = subscriptionOf(scope).toLowerCase();
    perSubscription.set(sub, (perSubscription.get(sub) ?? 0) + 1);
  }
  return perSubscription;
}

/**
 * The first subscription whose cap the pool's nodes would cross, or undefined when they fit. `replacing`: the pool's
 * current settings, when these replace them: a subscription where the new settings ask no more than the current ones
 * is not checked again (the pool was let in with them); where they ask more, the check is creation's, which counts the
 * grants the pool's nodes already hold twice (in the subscription's count and in the pool's demand): on the safe side,
 * and exact for a pool that has no nodes yet.
 */
export async function roleAssignmentShortfall(arm: ArmClients, spec: Spec, replacing?: Spec): Promise<BudgetShortfall | undefined> {
  const perSubscription = grantsBySubscription(spec);
  const before = replacing ? grantsBySubscription(replacing) : new Map<string, number>();
  const nodes = spec.maxNodes ?? 1;
  for (const [subscriptionId, grantsPerNode] of perSubscription) {
    if (replacing && nodes * grantsPerNode <= (replacing.maxNodes ?? 1) * (before.get(subscriptionId) ?? 0)) continue;
    const scopes = spec.roleGrants
      .map((g) => (g.scope === "cluster" ? spec.clusterResourceId : spec.arc.resourceGroupId))
      .filter((scope) => subscriptionOf(scope).toLowerCase() === subscriptionId);
    const existing = await countRoleAssignments(arm, subscriptionId, [...new Set(scopes.map((s) => s.toLowerCase()))]);
    if (existing + nodes * grantsPerNode > ROLE_ASSIGNMENTS_PER_SUBSCRIPTION) {
      return {
        subscriptionId,
        existingRoleAssignments: existing,
        grantsPerNode,
        nodes,
        limit: ROLE_ASSIGNMENTS_PER_SUBSCRIPTION,
        maxNodesThatFit: Math.max(0, Math.floor((ROLE_ASSIGNMENTS_PER_SUBSCRIPTION - existing) / grantsPerNode)),
      };
    }
  }
  return undefined;
}

/** Distinct assignments in the subscription seen from the given scopes (a listing also returns inherited ones). */
async function countRoleAssignments(arm: ArmClients, subscriptionId: string, scopes: string[]): Promise<number> {
  const prefix = `/subscriptions/${subscriptionId}`.toLowerCase();
  const seen = new Set<string>();
  for (const scope of scopes) {
    for await (const ra of arm.authorization(subscriptionId).roleAssignments.listForScope(pathArg(scope))) {
      const at = (ra.scope ?? "").toLowerCase();
      if ((at === prefix || at.startsWith(`${prefix}/`)) && ra.id) seen.add(ra.id.toLowerCase());
    }
  }
  return seen.size;
}
