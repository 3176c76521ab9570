/** Event Grid trigger for Arc machine write/delete events (see orchestrations/events/machine-events.ts). */
import * as df from "durable-functions";
import { handleMachineEvent } from "../orchestrations/events/machine-events.js";
import { workflowClientFrom } from "../orchestrations/enrolment/workflow-client.js";
import { services } from "../orchestrations/services.js";

df.app.client.eventGrid("machineEvents", {
  handler: async (event, client, context) => {
    const svc = await services();
    const decision = await handleMachineEvent(event, { registry: svc.registry, workflows: workflowClientFrom(client), serviceObjectId: svc.settings.SERVICE_PRINCIPAL_ID });
    context.log(`machine event ${(event as { id?: string }).id ?? "?"}: ${decision.kind}${"reason" in decision ? ` (${decision.reason})` : ""}`);
  },
});
