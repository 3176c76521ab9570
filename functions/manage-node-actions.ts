/** Admin API: retry a Failed node's onboarding, cancel an onboarding in flight. Both answer 202 with the operation. */
import { z } from "zod";
import { cancelOnboarding, retryNode } from "../orchestrations/use-cases/operator.js";
import { defineRoute, durableHttpRoute, json } from "./http/route.js";
import { NodeIdParams, operationLocation } from "./manage-nodes.js";
import type { ServiceProvider } from "../orchestrations/services.js";

const Accepted = z.object({ nodeId: z.string(), status: z.string(), operationId: z.string() });
const LOCATION = { location: "/api/manage/operations/{operationId}" };

const retry = defineRoute({
  name: "manageNodeRetry",
  method: "POST",
  route: "manage/nodes/{nodeId}/retry",
  summary: "Onboard a Failed node again: a fresh saga run under the same node id",
  tag: "nodes",
  access: "admin",
  params: NodeIdParams,
  responses: {
    202: { description: "Onboarding started; Location names the operation", schema: Accepted, headers: LOCATION },
    404: { description: "No such node" },
    409: { description: "The node is not Failed, or its failed run is still finishing" },
    429: { description: "Pool full; retry" },
  },
});
const cancel = defineRoute({
  name: "manageNodeCancel",
  method: "POST",
  route: "manage/nodes/{nodeId}/cancel",
  summary: "Cancel an onboarding in flight: the saga stops and compensation removes what it created (the node ends Failed, code Cancelled)",
  tag: "nodes",
  access: "admin",
  params: NodeIdParams,
  responses: {
    202: { description: "Compensation started (or already running); Location names the operation", schema: Accepted, headers: LOCATION },
    404: { description: "No such node" },
    409: { description: "The node is not onboarding" },
  },
});

export function registerNodeActionRoutes(services: ServiceProvider): void {
  durableHttpRoute(retry, services, async ({ params, principal, workflows, services: { registry, now, events } }) => {
    const { node, instanceId } = await retryNode({ registry, now, events: events(), workflows }, params.nodeId, principal.name);
    return json(202, { nodeId: node.nodeId, status: node.status, operationId: instanceId }, { location: operationLocation(instanceId) });
  });
  durableHttpRoute(cancel, services, async ({ params, principal, workflows, services: { registry, now, events } }) => {
    const { node, instanceId } = await cancelOnboarding({ registry, now, events: events(), workflows }, params.nodeId, principal.name);
    return json(202, { nodeId: node.nodeId, status: node.status, operationId: instanceId }, { location: operationLocation(instanceId) });
  });
}
