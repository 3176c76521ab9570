/**
 * Durable history retention: a finished saga's history (its inputs, activity results, timers) is only needed while
 * someone may look at it; after the retention period it goes. Running and pending instances are never purged, whatever
 * their age: the sweeper owns those.
 */
import type { HistoryPurger } from "../clients/workflow-client.js";

const DAY_MS = 86_400_000;

export interface PurgeHistoryOptions {
  now: Date;
  retentionDays: number;
}

export async function purgeFinishedHistory(purger: HistoryPurger, options: PurgeHistoryOptions): Promise<{ createdBefore: Date; purged: number }> {
  const createdBefore = new Date(options.now.getTime() - options.retentionDays * DAY_MS);
  return { createdBefore, purged: await purger.purgeFinished(createdBefore) };
}
