/** Admin API: nodes — list, get (with live progress and a timeline), approve, reject, decommission, re-key. */
import { z } from "zod";
import { NODE_ID_PATTERN } from "../contract/node-id.js";
import { approveNode, rejectNode } from "../orchestrations/use-cases/approval.js";
import { decommissionNode } from "../orchestrations/use-cases/decommission.js";
import { rekeyNode } from "../orchestrations/use-cases/rekey.js";
import { PublicKeySchema } from "../contract/keys.js";
import { NodeStatus, PoolName } from "../orchestrations/clients/registry/model.js";
import { nodeInsight, Operation, TimelineEntry } from "../orchestrations/use-cases/node-insight.js";
import { ProblemError } from "./http/problem.js";
import { defineRoute, durableHttpRoute, httpRoute, json } from "./http/route.js";
import { nodeView, NodeView, pageOf, Paging } from "./http/views.js";
import type { ServiceProvider } from "../orchestrations/services.js";

/** Where a 202's operation can be followed (GET /api/manage/operations/{operationId}). */
export const operationLocation = (instanceId: string): string => `/api/manage/operations/${instanceId}`;

export const NodeIdParams = z.strictObject({ nodeId: z.string().regex(NODE_ID_PATTERN, "must be a node id (fn- and 24 hex digits)") });

const list = defineRoute({
  name: "manageNodeList",
  method: "GET",
  route: "manage/nodes",
  summary: "List nodes, optionally by pool, status, failure code and creation time, a page at a time",
  tag: "nodes",
  access: "reader",
  query: Paging.extend({
    pool: PoolName.optional(),
    status: NodeStatus.optional(),
    failureCode: z
      .string()
      .regex(/^[A-Za-z][A-Za-z0-9.-]{0,63}$/, "must be an error code such as NodeStepFailed")
      .optional()
      .describe("The code of the node's last error"),
    createdSince: z.iso.datetime().optional().describe("Nodes created at or after this time (ISO 8601, UTC)"),
  }),
  responses: { 200: { description: "A page of nodes", schema: pageOf(NodeView) } },
});
const get = defineRoute({
  name: "manageNodeGet",
  method: "GET",
  route: "manage/nodes/{nodeId}",
  summary: "Get a node, the live progress of the saga working on it, and its timeline",
  tag: "nodes",
  access: "reader",
  params: NodeIdParams,
  responses: {
    200: {
      description: "The node",
      schema: NodeView.extend({
        progress: Operation.optional().describe("The running saga on the node (else the last one): phase, step, attempt, last error"),
        timeline: z.array(TimelineEntry).describe("Audit events and node step attempts, oldest first"),
      }),
    },
    404: { description: "No such node" },
  },
});
const approve = defineRoute({
  name: "manageNodeApprove",
  method: "POST",
  route: "manage/nodes/{nodeId}/approve",
  summary: "Approve a node waiting for approval (or a quarantined claim on its identity) and start onboarding",
  tag: "nodes",
  access: "admin",
  params: NodeIdParams,
  responses: {
    200: { description: "Approved; onboarding started", schema: NodeView },
    404: { description: "No such node" },
    409: { description: "Not awaiting approval" },
    429: { description: "Pool full; retry" },
  },
});
const reject = defineRoute({
  name: "manageNodeReject",
  method: "POST",
  route: "manage/nodes/{nodeId}/reject",
  summary: "Reject a node waiting for approval (or drop a quarantined claim on its identity)",
  tag: "nodes",
  access: "admin",
  params: NodeIdParams,
  responses: { 200: { description: "Rejected", schema: NodeView }, 404: { description: "No such node" }, 409: { description: "Not awaiting approval" } },
});
const decommission = defineRoute({
  name: "manageNodeDecommission",
  method: "POST",
  route: "manage/nodes/{nodeId}/decommission",
  summary: "Offboard a node: the agent resets, and every Azure and Kubernetes object made for it is removed",
  tag: "nodes",
  access: "admin",
  params: NodeIdParams,
  responses: {
    202: {
      description: "Offboarding started (or already running); Location names the operation",
      schema: z.object({ nodeId: z.string(), instanceId: z.string() }),
      headers: { location: "/api/manage/operations/{operationId}" },
    },
    404: { description: "No such node" },
  },
});

const rekey = defineRoute({
  name: "manageNodeRekey",
  method: "POST",
  route: "manage/nodes/{nodeId}/rekey",
  summary: "Bind a new Ed25519 public key to a node (audited); its old key stops acting for it at once",
  tag: "nodes",
  access: "admin",
  params: NodeIdParams,
  body: z.strictObject({ publicKey: PublicKeySchema }),
  responses: {
    200: { description: "Re-keyed (or already on this key)", schema: NodeView },
    404: { description: "No such node" },
    409: { description: "The key acts for another live node (key-in-use)" },
  },
});

export function registerNodeAdminRoutes(services: ServiceProvider): void {
  httpRoute(list, services, async ({ query, services: { registry } }) => {
    const { pageSize, continuationToken, ...filter } = query;
    const page = await registry.nodes.list({ ...filter, maxPageSize: pageSize, continuationToken });
    return json(200, { items: page.items.map(nodeView), continuationToken: page.continuationToken });
  });
  durableHttpRoute(get, services, async ({ params, workflows, services: { registry } }) => {
    const node = await registry.nodes.get(params.nodeId);
    if (!node) throw new ProblemError(404, "not-found", "No such node", { detail: `node '${params.nodeId}' does not exist` });
    return json(200, { ...nodeView(node), ...(await nodeInsight({ registry, workflows }, node)) });
  });
  durableHttpRoute(approve, services, async ({ params, principal, workflows, services: { registry, now, events } }) => {
    return json(200, nodeView(await approveNode({ registry, now, events: events(), workflows }, params.nodeId, principal.name)));
  });
  durableHttpRoute(reject, services, async ({ params, principal, workflows, services: { registry, now, events } }) => {
    return json(200, nodeView(await rejectNode({ registry, now, events: events(), workflows }, params.nodeId, principal.name)));
  });
  httpRoute(rekey, services, async ({ params, body, principal, services: { registry } }) => {
    return json(200, nodeView(await rekeyNode({ registry }, params.nodeId, body.publicKey, principal.name)));
  });
  durableHttpRoute(decommission, services, async ({ params, principal, workflows, services: { registry } }) => {
    const outcome = await decommissionNode({ registry, workflows }, params.nodeId, principal.name);
    if (outcome.kind === "notFound") throw new ProblemError(404, "not-found", "No such node", { detail: `node '${params.nodeId}' does not exist` });
    return json(202, { nodeId: outcome.nodeId, instanceId: outcome.instanceId }, { location: operationLocation(outcome.instanceId) });
  });
}
