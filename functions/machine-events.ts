/** Event Grid trigger for Arc machine write/delete events (see orchestrations/use-cases/machine-events.ts). */
import * as df from "durable-functions";
import { handleMachineEvent } from "../orchestrations/use-cases/machine-events.js";
import { workflowClientFrom } from "../orchestrations/clients/workflow-client.js";
import { machineTags } from "../orchestrations/clients/arm/arc-machines.js";
import type { ServiceProvider } from "../orchestrations/services.js";

export function registerMachineEvents(services: ServiceProvider): void {
  df.app.client.eventGrid("machineEvents", {
    handler: async (event, client, context) => {
      const svc = await services();
      const decision = await handleMachineEvent(event, {
        registry: svc.registry,
        workflows: workflowClientFrom(client),
        serviceObjectId: svc.settings.SERVICE_PRINCIPAL_ID,
        now: svc.now,
        machineTags: (id) => machineTags(svc.arm(), id),
      });
      context.log(`machine event ${(event as { id?: string }).id ?? "?"}: ${decision.kind}${"reason" in decision ? ` (${decision.reason})` : ""}`);
    },
  });
}
