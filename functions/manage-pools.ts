/** Admin API: pools. */
import { z } from "zod";
import { PoolName, PoolSpec } from "../orchestrations/clients/registry/model.js";
import { defineRoute, durableHttpRoute, httpRoute, json } from "./http/route.js";
import { wakeSlotWaiters } from "./slot-wakes.js";
import { ProblemError } from "./http/problem.js";
import { pageOf, Paging, PoolView } from "./http/views.js";
import type { ServiceProvider } from "../orchestrations/services.js";
import type { ArmClients } from "../orchestrations/clients/arm/arm-clients.js";
import { roleAssignmentShortfall } from "../orchestrations/use-cases/role-assignment-budget.js";
import { poolClusterRefusal } from "../orchestrations/use-cases/pool-cluster.js";
import { poolSpecStorageIssues } from "../orchestrations/use-cases/pool-spec-budget.js";
import { tokensOverBudget } from "../orchestrations/use-cases/node-label-budget.js";
import type { Registry } from "../orchestrations/clients/registry/registry.js";
import type { InvocationContext } from "@azure/functions";
import type { DurableClient } from "durable-functions";

type PoolSpecInput = Parameters<typeof roleAssignmentShortfall>[1];

const PoolParams = z.strictObject({ pool: PoolName });
export const CreatePool = PoolSpec.extend({ name: PoolName });

const create = defineRoute({
  name: "managePoolCreate",
  method: "POST",
  route: "manage/pools",
  summary: "Create a pool",
  tag: "pools",
  access: "admin",
  body: CreatePool,
  responses: {
    201: { description: "Created", schema: PoolView },
    409: {
      description:
        "A pool with this name exists, its nodes' role grants would cross ARM's role-assignment cap, or its cluster's network plugin is not 'none' (flex nodes need a bring-your-own overlay CNI)",
    },
  },
});
const list = defineRoute({
  name: "managePoolList",
  method: "GET",
  route: "manage/pools",
  summary: "List pools",
  tag: "pools",
  access: "reader",
  query: Paging,
  responses: { 200: { description: "A page of pools", schema: pageOf(PoolView) } },
});
const get = defineRoute({
  name: "managePoolGet",
  method: "GET",
  route: "manage/pools/{pool}",
  summary: "Get a pool",
  tag: "pools",
  access: "reader",
  params: PoolParams,
  responses: { 200: { description: "The pool", schema: PoolView }, 404: { description: "No such pool" } },
});
const update = defineRoute({
  name: "managePoolUpdate",
  method: "PUT",
  route: "manage/pools/{pool}",
  summary: "Replace a pool's settings (send If-Match with the ETag you read to avoid lost updates)",
  tag: "pools",
  access: "admin",
  params: PoolParams,
  body: PoolSpec,
  responses: {
    200: { description: "Updated", schema: PoolView },
    404: { description: "No such pool" },
    409: { description: "Changed by someone else since your If-Match ETag, or a new cluster whose network plugin is not 'none'" },
  },
});

const remove = defineRoute({
  name: "managePoolDelete",
  method: "DELETE",
  route: "manage/pools/{pool}",
  summary: "Delete an empty pool (every node of it Offboarded, nothing in flight); its offboarded nodes' records stay",
  tag: "pools",
  access: "admin",
  params: PoolParams,
  responses: { 204: { description: "Deleted" }, 404: { description: "No such pool" }, 409: { description: "The pool still has nodes" } },
});

export function registerPoolRoutes(services: ServiceProvider): void {
  httpRoute(create, services, async ({ body, principal, services: { registry, arm } }) => {
    const { name, ...spec } = body;
    refuseUnstorable(spec);
    await refuseClusterNetwork(arm(), spec.clusterResourceId);
    await refuseOverCap(arm(), spec);
    const pool = await registry.pools.create(name, spec, principal.name);
    return json(201, pool, { etag: pool.etag, location: `/api/manage/pools/${name}` });
  });
  httpRoute(list, services, async ({ query, services: { registry } }) => {
    return json(200, await registry.pools.list({ maxPageSize: query.pageSize, continuationToken: query.continuationToken }));
  });
  httpRoute(get, services, async ({ params, services: { registry } }) => {
    const pool = await registry.pools.get(params.pool);
    if (!pool) throw new ProblemError(404, "not-found", "No such pool", { detail: `pool '${params.pool}' does not exist` });
    return json(200, pool, { etag: pool.etag });
  });
  durableHttpRoute(update, services, async ({ params, body, principal, request, context, client, services: { registry, arm, now } }) => {
    refuseUnstorable(body);
    // Raising maxNodes or adding grants later must not pass the cap that creation checks.
    const current = await registry.pools.get(params.pool);
    if (current) await refuseStrandedTokens(registry, params.pool, body, current, now());
    if (current && current.clusterResourceId.toLowerCase() !== body.clusterResourceId.toLowerCase()) await refuseClusterNetwork(arm(), body.clusterResourceId);
    if (current) await refuseOverCap(arm(), body, current);
    const pool = await registry.pools.update(params.pool, body, principal.name, request.headers.get("if-match") ?? undefined);
    await promoteWaiters(registry, client, context, params.pool, current ? body.maxInFlight - current.maxInFlight : 0, now());
    return json(200, pool, { etag: pool.etag });
  });
  httpRoute(remove, services, async ({ params, principal, services: { registry } }) => {
    if (!(await registry.pools.get(params.pool))) throw new ProblemError(404, "not-found", "No such pool", { detail: `pool '${params.pool}' does not exist` });
    if (await registry.nodes.hasLiveNodes(params.pool)) {
      throw new ProblemError(409, "pool-not-empty", "The pool still has nodes", {
        detail: `decommission the nodes of pool '${params.pool}' first; only Offboarded nodes may remain`,
      });
    }
    await registry.pools.remove(params.pool, principal.name);
    return { status: 204, headers: { "cache-control": "no-store" } };
  });
}

/** The most waiting nodes a raise of maxInFlight moves onto the new slots within the request (about 4 registry requests each). */
const PROMOTED_PER_RAISE = 100;

/**
 * A raised limit hands nobody a slot: the nodes that waited longest are moved onto the new slots here, in the order
 * they arrived, and their sagas woken. Past PROMOTED_PER_RAISE, waiting nodes find the free slots at their next look.
 */
async function promoteWaiters(registry: Registry, client: DurableClient, context: InvocationContext, pool: string, raisedBy: number, now: Date) {
  if (raisedBy <= 0) return;
  const promoted = [];
  for (const nodeId of await registry.nodes.waiters(pool, Math.min(raisedBy, PROMOTED_PER_RAISE))) {
    if (await registry.nodes.takeSlot({ pool, nodeId }, { waited: true, at: now.toISOString() })) promoted.push({ pool, nodeId });
  }
  await wakeSlotWaiters(client, context, promoted);
}

/** A spec valid by its schema whose row Azure Tables would refuse (use-cases/pool-spec-budget.ts): 422 naming the field. */
function refuseUnstorable(spec: Parameters<typeof poolSpecStorageIssues>[0]): void {
  const issues = poolSpecStorageIssues(spec);
  if (issues.length > 0) throw new ProblemError(422, "validation-failed", "The request body is not valid", { errors: issues });
}

/**
 * Labels or taints added to a pool that, with those of a token still usable, would not fit on a node: every enrolment
 * with that token would be refused (use-cases/node-label-budget.ts). 422 on the field, naming the tokens. Only tokens
 * this change would strand count: one over the budget already (made before the rule) must not block every edit.
 */
type LabelSides = { nodeLabels: Record<string, string>; nodeTaints: readonly unknown[] };
async function refuseStrandedTokens(registry: Registry, pool: string, spec: LabelSides, current: LabelSides, now: Date) {
  const usable = [];
  let continuationToken: string | undefined;
  do {
    const page = await registry.tokens.list({ pool, continuationToken });
    usable.push(...page.items.filter((t) => !t.revokedAt && Date.parse(t.expiresAt) > now.getTime() && t.uses < t.maxUses));
    continuationToken = page.continuationToken;
  } while (continuationToken);
  const already = new Set(tokensOverBudget(current, usable).map((t) => t.token.tokenId));
  const stranded = tokensOverBudget(spec, usable).filter((t) => !already.has(t.token.tokenId));
  if (stranded.length === 0) return;
  const errors = new Map<string, string[]>();
  for (const { token, issues } of stranded) for (const i of issues) errors.set(i.field, [...(errors.get(i.field) ?? []), token.tokenId]);
  throw new ProblemError(422, "validation-failed", "The request body is not valid", {
    errors: [...errors].map(([field, tokens]) => ({
      path: `/${field === "labels" ? "nodeLabels" : "nodeTaints"}`,
      message: `with the ${field} of usable token(s) ${tokens.join(", ")} a node would carry more than a node may; revoke those tokens or add fewer`,
    })),
  });
}

/** The cluster's pod network cannot reach flex nodes (use-cases/pool-cluster.ts): 409, naming its plugin and what is needed. */
async function refuseClusterNetwork(arm: ArmClients, clusterResourceId: string): Promise<void> {
  const refusal = await poolClusterRefusal(arm, clusterResourceId);
  if (!refusal) return;
  throw new ProblemError(409, "cluster-network-plugin", "The cluster's network plugin cannot give flex nodes a pod network", { ...refusal, clusterResourceId });
}

/** The pool's per-node grants would cross ARM's role-assignment cap (role-assignment-budget.ts): 409, saying how many fit. */
async function refuseOverCap(arm: ArmClients, spec: PoolSpecInput, replacing?: PoolSpecInput): Promise<void> {
  const s = spec.roleGrants.length > 0 ? await roleAssignmentShortfall(arm, spec, replacing) : undefined;
  if (!s) return;
  throw new ProblemError(409, "role-assignment-cap", "The pool's role grants would cross ARM's role-assignment cap", {
    detail:
      `subscription '${s.subscriptionId}' holds ${s.existingRoleAssignments} role assignments; ${s.nodes} node(s) × ${s.grantsPerNode} per-node grant(s) ` +
      `would take it past ARM's ${s.limit} per subscription, and ARM would refuse the grants (RoleAssignmentLimitExceeded). ` +
      `At most ${s.maxNodesThatFit} node(s) with these grants fit: lower maxNodes, grant fewer roles per node, or free role assignments in the subscription.`,
    ...s,
  });
}
