/** Admin API: the fleet summary, and the operations (sagas) a 202 points at. */
import { z } from "zod";
import { fleetSummary, FleetSummary } from "../orchestrations/use-cases/fleet-summary.js";
import { Operation, operationOf } from "../orchestrations/use-cases/node-insight.js";
import { ProblemError } from "./http/problem.js";
import { defineRoute, durableHttpRoute, httpRoute, json } from "./http/route.js";
import type { ServiceProvider } from "../orchestrations/services.js";

const fleet = defineRoute({
  name: "manageFleet",
  method: "GET",
  route: "manage/fleet",
  summary: "The fleet: nodes by pool and status, onboarding slots in use against capacity, failures by code in the last hour and day",
  tag: "fleet",
  access: "reader",
  responses: { 200: { description: "The summary", schema: FleetSummary } },
});
const operation = defineRoute({
  name: "manageOperationGet",
  method: "GET",
  route: "manage/operations/{operationId}",
  summary: "An operation a 202 started (onboarding, compensation, offboarding): its runtime status and progress",
  tag: "fleet",
  access: "reader",
  params: z.strictObject({
    operationId: z
      .string()
      .regex(/^fn-[0-9a-f]{24}(:offboard|:compensate)?$/, "must be an operation id from a Location header (a node id, optionally :offboard or :compensate)"),
  }),
  responses: { 200: { description: "The operation", schema: Operation }, 404: { description: "No such operation" } },
});

export function registerFleetRoutes(services: ServiceProvider): void {
  httpRoute(fleet, services, async ({ services: { registry, now } }) => json(200, await fleetSummary({ registry, now })));
  durableHttpRoute(operation, services, async ({ params, workflows }) => {
    const found = await workflows.describe(params.operationId);
    if (!found) throw new ProblemError(404, "not-found", "No such operation", { detail: `operation '${params.operationId}' does not exist` });
    return json(200, operationOf(params.operationId, found));
  });
}
