/**
 * Which saga an ARM request is made for, as the pacer's order: the saga's start instant and instance id, so the writes
 * of older sagas are served first (write-pacer.ts says why). The activity host sets it around each activity run from
 * the field the saga's `call` adds to the activity's input; the pacer reads it without the activities passing it on.
 * Requests made outside a saga (admin routes, sweepers) carry none and rank as started now.
 */
import { AsyncLocalStorage } from "node:async_hooks";

const current = new AsyncLocalStorage<string>();

/** The rank of a saga started at `startedAtMs` as instance `instanceId`: orders by start, then by id. */
export function paceRank(startedAtMs: number, instanceId: string): string {
  return `${Math.max(0, Math.floor(startedAtMs)).toString().padStart(16, "0")}|${instanceId}`;
}

/** Runs `fn` with its ARM requests ranked as `rank` (none: ranked as made now). */
export function withPaceRank<T>(rank: string | undefined, fn: () => T): T {
  return rank === undefined ? fn() : current.run(rank, fn);
}

/** The rank of the saga the caller works for, if any. */
export function currentPaceRank(): string | undefined {
  return current.getStore();
}
