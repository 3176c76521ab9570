/** Event Grid trigger for Arc machine write/delete events (see orchestrations/use-cases/machine-events.ts). */
import { isRestError } from "@azure/core-rest-pipeline";
import * as df from "durable-functions";
import { handleMachineEvent } from "../orchestrations/use-cases/machine-events.js";
import { workflowClientFrom } from "../orchestrations/clients/workflow-client.js";
import { API_VERSIONS } from "../orchestrations/clients/arm/arm-clients.js";
import { subscriptionOf } from "../orchestrations/onboard/activities.js";
import { services } from "./composition-root.js";

df.app.client.eventGrid("machineEvents", {
  handler: async (event, client, context) => {
    const svc = await services();
    const decision = await handleMachineEvent(event, {
      registry: svc.registry,
      workflows: workflowClientFrom(client),
      serviceObjectId: svc.settings.SERVICE_PRINCIPAL_ID,
      now: svc.now,
      machineTags: async (id) => {
        try {
          const machine = await svc.arm().resources(subscriptionOf(id)).resources.getById(id, API_VERSIONS.hybridComputeMachines);
          return (machine.tags ?? {}) as Record<string, string>;
        } catch (error) {
          if (isRestError(error) && error.statusCode === 404) return undefined;
          throw error;
        }
      },
    });
    context.log(`machine event ${(event as { id?: string }).id ?? "?"}: ${decision.kind}${"reason" in decision ? ` (${decision.reason})` : ""}`);
  },
});
