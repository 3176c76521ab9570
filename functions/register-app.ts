/**
 * Every function of the app, registered against one ServiceProvider. The entry (functions/index.ts) passes the one
 * the composition root builds from the process's settings; tests and the sandbox pass their own.
 */
import type { ServiceProvider } from "../orchestrations/services.js";
import { registerActivities } from "./activities.js";
import { registerEnrolRoute } from "./enrol.js";
import { registerHealthRoute } from "./health.js";
import { registerMachineEvents } from "./machine-events.js";
import { registerFleetRoutes } from "./manage-fleet.js";
import { registerJoinConfigRoute } from "./manage-join-config.js";
import { registerNodeActionRoutes } from "./manage-node-actions.js";
import { registerNodeAdminRoutes } from "./manage-nodes.js";
import { registerPoolRoutes } from "./manage-pools.js";
import { registerTokenRoutes } from "./manage-tokens.js";
import { registerUiRoutes } from "./manage-ui.js";
import { registerNodeApiRoutes } from "./node-api.js";
import { registerNodeResults } from "./node-results.js";
import { registerOpenApiRoute } from "./openapi.js";
import { registerOrchestrations } from "./orchestrations.js";
import { registerSweeper } from "./sweeper.js";
import { registerPurgeHistory } from "./purge-history.js";

export function registerApp(services: ServiceProvider): void {
  registerHealthRoute();
  registerEnrolRoute(services);
  registerPoolRoutes(services);
  registerTokenRoutes(services);
  registerNodeAdminRoutes(services);
  registerNodeActionRoutes(services);
  registerFleetRoutes(services);
  registerUiRoutes(services);
  registerJoinConfigRoute(services);
  registerNodeApiRoutes(services);
  registerNodeResults(services);
  registerMachineEvents(services);
  registerSweeper(services);
  registerPurgeHistory(services);
  registerOpenApiRoute();
  registerActivities(services);
  registerOrchestrations();
}
