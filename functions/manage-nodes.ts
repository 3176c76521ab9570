/** Admin API: nodes — list, get, approve, reject. */
import { z } from "zod";
import { approveNode, rejectNode } from "../orchestrations/use-cases/approval.js";
import { isRunning, workflowClientFrom } from "../orchestrations/clients/workflow-client.js";
import { newRunId } from "../orchestrations/use-cases/node-results.js";
import { OFFBOARD_NODE, offboardInstanceId, type OffboardNodeInput } from "../orchestrations/offboard/offboard-node.js";
import { NodeStatus, PoolName } from "../orchestrations/clients/registry/model.js";
import { ProblemError } from "./http/problem.js";
import { defineRoute, durableHttpRoute, httpRoute, json } from "./http/route.js";
import { nodeView, NodeView, pageOf, Paging } from "./http/views.js";
import { services } from "./composition-root.js";

export const NodeIdParams = z.strictObject({ nodeId: z.string().regex(/^fn-[0-9a-f]{24}$/, "must be a node id (fn- and 24 hex digits)") });

const list = defineRoute({
  name: "manageNodeList",
  method: "GET",
  route: "manage/nodes",
  summary: "List nodes, optionally by pool and status, a page at a time",
  tag: "nodes",
  access: "reader",
  query: Paging.extend({ pool: PoolName.optional(), status: NodeStatus.optional() }),
  responses: { 200: { description: "A page of nodes", schema: pageOf(NodeView) } },
});
httpRoute(list, async ({ query }) => {
  const { registry } = await services();
  const page = await registry.listNodes({ pool: query.pool, status: query.status, maxPageSize: query.pageSize, continuationToken: query.continuationToken });
  return json(200, { items: page.items.map(nodeView), continuationToken: page.continuationToken });
});

const get = defineRoute({
  name: "manageNodeGet",
  method: "GET",
  route: "manage/nodes/{nodeId}",
  summary: "Get a node",
  tag: "nodes",
  access: "reader",
  params: NodeIdParams,
  responses: { 200: { description: "The node", schema: NodeView }, 404: { description: "No such node" } },
});
httpRoute(get, async ({ params }) => {
  const { registry } = await services();
  const node = await registry.getNode(params.nodeId);
  if (!node) throw new ProblemError(404, "not-found", "No such node", { detail: `node '${params.nodeId}' does not exist` });
  return json(200, nodeView(node));
});

const approve = defineRoute({
  name: "manageNodeApprove",
  method: "POST",
  route: "manage/nodes/{nodeId}/approve",
  summary: "Approve a node waiting for approval (or a quarantined claim on its identity) and start onboarding",
  tag: "nodes",
  access: "admin",
  params: NodeIdParams,
  responses: { 200: { description: "Approved; onboarding started", schema: NodeView }, 404: { description: "No such node" }, 409: { description: "Not awaiting approval" }, 429: { description: "Pool full; retry" } },
});
durableHttpRoute(approve, async ({ params, principal, client }) => {
  const { registry, now } = await services();
  return json(200, nodeView(await approveNode({ registry, now, workflows: workflowClientFrom(client) }, params.nodeId, principal.name)));
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
durableHttpRoute(reject, async ({ params, principal, client }) => {
  const { registry, now } = await services();
  return json(200, nodeView(await rejectNode({ registry, now, workflows: workflowClientFrom(client) }, params.nodeId, principal.name)));
});

const decommission = defineRoute({
  name: "manageNodeDecommission",
  method: "POST",
  route: "manage/nodes/{nodeId}/decommission",
  summary: "Offboard a node: the agent resets, and every Azure and Kubernetes object made for it is removed",
  tag: "nodes",
  access: "admin",
  params: NodeIdParams,
  responses: { 202: { description: "Offboarding started (or already running)", schema: z.object({ nodeId: z.string(), instanceId: z.string() }) }, 404: { description: "No such node" } },
});
durableHttpRoute(decommission, async ({ params, principal, client }) => {
  const { registry } = await services();
  const node = await registry.getNode(params.nodeId);
  if (!node) throw new ProblemError(404, "not-found", "No such node", { detail: `node '${params.nodeId}' does not exist` });
  const workflows = workflowClientFrom(client);
  // An onboarding in flight stops here; offboarding removes what it recorded, so nothing it made is lost.
  if (isRunning(await workflows.status(node.nodeId))) await workflows.terminate(node.nodeId, `decommissioned by ${principal.name}`);
  const instanceId = offboardInstanceId(node.nodeId);
  if (!isRunning(await workflows.status(instanceId))) {
    const input: OffboardNodeInput = { nodeId: node.nodeId, reason: `decommissioned by ${principal.name}`, actor: principal.name, run: newRunId() };
    await workflows.start(OFFBOARD_NODE, { instanceId, input });
  }
  await registry.audit({ actor: principal.name, action: "node.decommission", objectType: "node", objectId: node.nodeId });
  return json(202, { nodeId: node.nodeId, instanceId });
});
