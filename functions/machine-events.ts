/**
 * Event Grid trigger for Arc machine write/delete events, in the Event Grid schema or CloudEvents 1.0 (see
 * orchestrations/use-cases/machine-events.ts). An event it cannot parse is logged as an error and rethrown: the failed
 * invocation makes Event Grid retry it (infra/pool.bicep: up to 30 attempts within 24 hours). The subscription has no
 * dead-letter destination, so past that Event Grid drops the event: the error logged on each attempt is its only
 * trace, which is why it is logged before the rethrow rather than left to the bare failure.
 */
import { app } from "@azure/functions";
import { handleMachineEvent } from "../orchestrations/use-cases/machine-events.js";
import { UnparseableEventError } from "../orchestrations/use-cases/resource-event.js";
import { machineTags } from "../orchestrations/clients/arm/arc-machines.js";
import type { ServiceProvider } from "../orchestrations/services.js";
import { durableClientInput, durableOf } from "./durable-client.js";

export function registerMachineEvents(services: ServiceProvider): void {
  app.eventGrid("machineEvents", {
    extraInputs: [durableClientInput],
    handler: async (event, context) => {
      const svc = await services();
      try {
        const decision = await handleMachineEvent(event, {
          registry: svc.registry,
          workflows: durableOf(context).workflows,
          serviceObjectId: svc.settings.SERVICE_PRINCIPAL_ID,
          now: svc.now,
          machineTags: (id) => machineTags(svc.arm(), id),
        });
        context.log(`machine event ${(event as { id?: string }).id ?? "?"}: ${decision.kind}${"reason" in decision ? ` (${decision.reason})` : ""}`);
      } catch (error) {
        if (error instanceof UnparseableEventError) context.error(error.message);
        throw error;
      }
    },
  });
}
