/** Timer trigger: purges finished sagas' Durable history past its retention (orchestrations/use-cases/purge-history.ts). */
import { app } from "@azure/functions";
import { historyPurgerFrom } from "../orchestrations/clients/workflow-client.js";
import type { ServiceProvider } from "../orchestrations/services.js";
import { purgeFinishedHistory } from "../orchestrations/use-cases/purge-history.js";
import { durableClientInput, durableClientOf } from "./durable-client.js";

export function registerPurgeHistory(services: ServiceProvider): void {
  // Daily, off the hour: a purge scans the instances table, which is more than the 15-minute sweep needs to do.
  app.timer("purgeHistory", {
    schedule: "0 17 3 * * *",
    extraInputs: [durableClientInput],
    handler: async (_timer, context) => {
      const svc = await services();
      const { createdBefore, purged } = await purgeFinishedHistory(historyPurgerFrom(durableClientOf(context)), {
        now: svc.now(),
        retentionDays: svc.settings.DURABLE_HISTORY_RETENTION_DAYS,
      });
      context.log(`purgeHistory: ${purged} finished instance(s) created before ${createdBefore.toISOString()} purged`);
    },
  });
}
