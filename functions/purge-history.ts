/** Timer trigger: purges finished sagas' Durable history past its retention (orchestrations/use-cases/purge-history.ts). */
import * as df from "durable-functions";
import { historyPurgerFrom } from "../orchestrations/clients/workflow-client.js";
import type { ServiceProvider } from "../orchestrations/services.js";
import { purgeFinishedHistory } from "../orchestrations/use-cases/purge-history.js";

export function registerPurgeHistory(services: ServiceProvider): void {
  // Daily, off the hour: a purge scans the instances table, which is more than the 15-minute sweep needs to do.
  df.app.client.timer("purgeHistory", {
    schedule: "0 17 3 * * *",
    handler: async (_timer, client, context) => {
      const svc = await services();
      const { createdBefore, purged } = await purgeFinishedHistory(historyPurgerFrom(client), {
        now: svc.now(),
        retentionDays: svc.settings.DURABLE_HISTORY_RETENTION_DAYS,
      });
      context.log(`purgeHistory: ${purged} finished instance(s) created before ${createdBefore.toISOString()} purged`);
    },
  });
}
