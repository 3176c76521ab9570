/** Timer trigger: the periodic sweep (see orchestrations/use-cases/sweep.ts). Every 15 minutes; a missed run is harmless. */
import { app } from "@azure/functions";
import type { ServiceProvider } from "../orchestrations/services.js";
import { sweep } from "../orchestrations/use-cases/sweep.js";
import { durableClientInput, durableOf } from "./durable-client.js";

export function registerSweeper(services: ServiceProvider): void {
  app.timer("sweeper", {
    schedule: "0 */15 * * * *",
    extraInputs: [durableClientInput],
    handler: async (_timer, context) => {
      const svc = await services();
      const s = svc.settings;
      const report = await sweep(svc, durableOf(context).workflows, {
        sagaDeadlineMs: s.SWEEP_SAGA_DEADLINE_MINUTES * 60_000,
        removeOrphans: s.SWEEP_REMOVE_ORPHANS === "true",
        claimRetentionMs: s.SWEEP_CLAIM_RETENTION_HOURS * 3_600_000,
      });
      context.log(
        `sweep: ${report.tokensExpired.length} token(s) expired, ${report.sagasFailed.length} stuck saga(s) failed, ${report.orphans.length} orphan(s) found, ${report.orphansRemoved.length} removed, ${report.orphansNotRemoved.length} not removed, ${report.claimsPurged} claim(s) purged`,
      );
      for (const o of report.orphans) context.log(`sweep: orphan ${o.ref} (${o.reason})`);
      for (const f of report.sagasFailed) context.log(`sweep: failed node ${f.nodeId}: ${f.reason}`);
      for (const s of report.sagasStopped) context.warn(`sweep: stopped ${s.instanceId}: ${s.reason}`);
      for (const o of report.offboardingsResumed) context.log(`sweep: resumed offboarding of ${o.nodeId}: ${o.reason}`);
      for (const n of report.orphansNotRemoved) context.warn(`sweep: could not remove ${n.ref}: ${n.error}`);
    },
  });
}
