/**
 * A pool's in-flight capacity as slot rows: `slot:<k>` (k in 0..maxInFlight-1) in the pool's partition of `nodes`,
 * each naming the node that holds it; the node row names its slot (`slot`). A node takes a slot by inserting its row
 * and frees it by deleting it, in the same entity-group transaction that creates or moves the node, so the slots
 * cannot drift from the nodes: a slot is never held by a node that left in-flight, and no node-side work runs without one.
 *
 * Why slots and not one counter row: every enrolment of a pool used to update the pool's `$counter` row under its
 * ETag, so concurrent enrolments serialised on it and spent their time in 412 retries (34–37 requests per enrolment at
 * concurrency 32, against 23 alone). An insert of a row nobody else wants never conflicts; the service refuses a
 * second insert of the same row (409), which is what keeps capacity exact: at most maxInFlight slot rows below the
 * limit can exist, and each is one node's. An enrolment starts at a slot picked by a hash of its node id, so
 * concurrent enrolments rarely pick the same one; on a 409 it lists the taken slots (one range query) and picks a
 * free one at random, or takes its `whenFull` row when none is. Sharded counters would still need a read-modify-write
 * per enrolment (and a sum over shards to decide).
 *
 * - Offboarding holds a slot (it is saga work) but is never refused: when no slot is free it takes an overflow row
 *   (`slot:~<node>`), which counts as in flight. A node that frees a slot while an overflow row exists hands the slot
 *   to that node instead (same transaction: the slot row re-pointed, the overflow row deleted, the holder's row told),
 *   so a pool over its limit admits nobody until it is back under it. Freeing a slot therefore costs one range query.
 * - An enrolment is never refused either: when no slot is free the node takes a waiting row
 *   (`slot:~w:<enrolled-at ms>:<node>`), which does not count against the limit. Its saga prepares the Azure side (the
 *   mailbox, the Arc machine, the grants: ARM's bucket paces that, not the pool) and waits for a slot before it touches
 *   the node or the cluster. Waiting rows sort after overflow rows and in the order nodes arrived, so a freed slot goes
 *   to an offboarding over the limit first, then to the node that has waited longest. Why not 429 as before: a refused
 *   node retried every 30 s with nothing done, so ARM's write budget sat idle whenever `maxInFlight` sagas could not
 *   ask for all of it (issue 16: 0.37 of the bucket's bound at 100 in flight), and a slot, once free, first waited for
 *   a retry and then for the whole Azure side of the saga that took it.
 * - Lowering maxInFlight leaves slots above the new limit with their nodes until they leave in-flight; the listing
 *   counts them, so an enrolment that finds its first slot taken waits while the pool is over its limit.
 * - The in-flight count is the number of slot and overflow rows, the waiting count that of waiting rows (one range
 *   query; admin reads only, never enrolment).
 * - A slot row whose node does not hold it (none should exist: rows move in transactions) is reclaimed by the
 *   sweeper through `reclaim`.
 * - Each process remembers which slots of a pool it took, is taking, or last saw taken in a listing (`KnownSlots`), and
 *   starts a node's search at the first slot from its hash that it does not know to be taken: the service's 409 still
 *   decides, the memory only spares the conflicts one process would have with itself (a hash collision among 800
 *   enrolments into 10,000 slots cost 0.07 requests per enrolment). A slot another process freed looks taken until
 *   the next listing, which costs a probe further, never a wait. When it saw every slot taken in the last 10 s (a
 *   listing, or its own takes), a node goes straight to its waiting row, sparing the probe and the listing; a slot
 *   another process freed meanwhile is taken at the saga's first look (promote). Past 10 s it probes and lists again,
 *   so knowledge gone stale in a scaled-out app costs a saga's look, not a queue that never moves.
 */
import { createHash, randomInt } from "node:crypto";
import type { TableClient, TransactionAction, TableTransactionResponse } from "@azure/data-tables";
import { isRestError } from "@azure/core-rest-pipeline";
import { RegistryError, deleteIfPresent, escape, read, status } from "./table-rows.js";

const SLOT_RANGE = (pool: string) => `PartitionKey eq '${escape(pool)}' and RowKey ge 'slot:' and RowKey lt 'slot;'`;
const slotRow = (k: number) => `slot:${k}`;
const OVERFLOW = "slot:~";
export const overflowRow = (nodeId: string) => `${OVERFLOW}${nodeId}`;
const WAITING = "slot:~w:";
/** A node waiting for a slot: ordered by when it arrived (ms since the epoch, fixed width), then by node. */
export const waitingRow = (at: Date, nodeId: string) => `${WAITING}${String(at.getTime()).padStart(15, "0")}:${nodeId}`;
/** Whether a node's slot row lets it run node-side work (a slot below the limit, or offboarding's overflow). */
export const isWaiting = (slot: string | undefined): boolean => slot?.startsWith(WAITING) === true;
/** The legacy per-pool counter row; removed with the pool. */
const LEGACY_COUNTER = "$counter";
const ATTEMPTS = 16;

export interface SlotMove {
  nodeId: string;
  /** The slot row the node holds before the change, if any. */
  held?: string;
  /** Whether the node is in flight after the change. */
  inFlight: boolean;
  /** The pool's maxInFlight. */
  limit: number;
  /**
   * The row the node takes when no slot is free: never a refusal. Offboarding takes an overflow row (overflowRow: it
   * runs, over the limit); anything else a waiting row (waitingRow: its saga waits before node-side work).
   */
  whenFull: string;
  /** When the move happens (ISO 8601): a node handed a slot records it as `slotSince`. */
  at: string;
  /** The pool's limit now, read only when a freed slot could go to a waiting node (the limit may have been lowered). */
  currentLimit: () => Promise<number>;
}

/** An action of the caller's that the service refused (its index among the caller's actions, and the status). */
export class ActionRefused extends Error {
  constructor(
    readonly index: number,
    readonly status: number,
  ) {
    super(`transaction action ${index} refused with ${status}`);
  }
}

export class InFlightSlots {
  private readonly known = new KnownSlots();

  /** `table` is the `nodes` table. */
  constructor(private readonly table: TableClient) {}

  /** Removes what is left of the pool's slots (the pool is being deleted, with nothing in flight). */
  async remove(pool: string): Promise<void> {
    for (const rk of await this.taken(pool)) await deleteIfPresent(this.table, pool, rk);
    await deleteIfPresent(this.table, pool, LEGACY_COUNTER);
    this.known.forget(pool);
  }

  /** Nodes in flight (holding a slot or an overflow row) and nodes waiting for a slot. */
  async count(pool: string): Promise<{ inFlight: number; waiting: number }> {
    const rows = await this.taken(pool);
    const waiting = rows.filter(isWaiting).length;
    return { inFlight: rows.length - waiting, waiting };
  }

  /**
   * Moves a waiting node onto a free slot below the limit, when there is one (the limit was raised, or a slot was freed
   * with no one to hand it to): `actions` are the node's own (action 0 its row, under its ETag). The slot taken, or
   * undefined when none is free (nothing written). The usual way out of waiting is a handoff, which needs none of this.
   */
  async promote(
    pool: string,
    move: { nodeId: string; held: string; limit: number },
    actions: (slot: string) => TransactionAction[],
  ): Promise<{ slot: string; response: TableTransactionResponse } | undefined> {
    for (let i = 0; i < ATTEMPTS; i++) {
      const slot = await this.freeSlot(pool, move.limit);
      if (slot === undefined) return undefined;
      const batch = actions(slot);
      const own = batch.length;
      batch.push(["create", { partitionKey: pool, rowKey: slot, nodeId: move.nodeId }], ["delete", { partitionKey: pool, rowKey: move.held }]);
      this.known.taking(pool, slot);
      try {
        const response = await this.table.submitTransaction(batch);
        this.known.settled(pool, slot, true);
        return { slot, response };
      } catch (error) {
        const failed = isRestError(error) ? Number(/^(\d+):/.exec(error.message)?.[1]) : NaN;
        this.known.settled(pool, slot, Number.isNaN(failed) || (failed === own && status(error) === 409));
        if (Number.isNaN(failed)) throw error;
        if (failed < own) throw new ActionRefused(failed, status(error) ?? 0);
        if (failed === own && status(error) === 409) continue;
        throw error;
      }
    }
    throw new RegistryError("TooManyRetries", `pool '${pool}' is too contended; retry`);
  }

  /**
   * Runs the caller's `actions` (rows of the pool's partition in `nodes`; action 0 the node's own) in one transaction
   * with the node's slot taken or freed as `move` says. `actions` receives the slot the node holds after the change.
   * Refusals of the caller's actions are thrown as ActionRefused; a full pool gives the node its `whenFull` row. `heir` is the node a freed
   * slot was handed to, if any: its saga may be waiting for it.
   */
  async transact(
    pool: string,
    move: SlotMove,
    actions: (slot: string | undefined) => TransactionAction[],
  ): Promise<{ slot: string | undefined; response: TableTransactionResponse; heir?: string }> {
    // A waiting node that starts offboarding leaves the queue for a slot or an overflow row: offboarding runs at once.
    const leavesQueue = move.inFlight && isWaiting(move.held) && !isWaiting(move.whenFull);
    const held = leavesQueue ? undefined : move.held;
    // A pool this process last saw full: straight to the row for a full pool, sparing the probe and the listing that
    // would find it so (a slot freed meanwhile by another process is taken at the saga's first look, promote).
    let candidate =
      move.inFlight && !held
        ? this.known.seenFull(pool, move.limit)
          ? move.whenFull
          : this.known.first(pool, hashSlot(move.nodeId, move.limit), move.limit)
        : undefined;
    let release = !move.inFlight ? held : undefined;
    for (let i = 0; i < ATTEMPTS; i++) {
      const slot = move.inFlight ? (held ?? candidate) : undefined;
      const batch = actions(slot);
      const own = batch.length;
      if (candidate) batch.push(["create", { partitionKey: pool, rowKey: candidate, nodeId: move.nodeId }]);
      if (leavesQueue) batch.push(["delete", { partitionKey: pool, rowKey: move.held! }]);
      const heir = release && !release.startsWith(OVERFLOW) ? await this.heirOf(pool, release, move) : undefined;
      if (release && heir) {
        batch.push(
          ["update", { partitionKey: pool, rowKey: release, nodeId: heir.nodeId }, "Replace"],
          ["delete", { partitionKey: pool, rowKey: heir.row }],
          ["update", { partitionKey: pool, rowKey: `node:${heir.nodeId}`, slot: release, slotSince: move.at }, "Merge"],
        );
      } else if (release) batch.push(["delete", { partitionKey: pool, rowKey: release }]);
      if (candidate) this.known.taking(pool, candidate);
      try {
        const response = await this.table.submitTransaction(batch);
        if (candidate) this.known.settled(pool, candidate, true);
        if (release) this.known.settled(pool, release, !!heir);
        // Only a waiting heir has a saga waiting to hear of it (an offboarding over the limit runs already).
        return { slot, response, ...(heir && isWaiting(heir.row) ? { heir: heir.nodeId } : {}) };
      } catch (error) {
        const code = status(error);
        // The service names the failed action by index at the start of its message ("1:The specified entity…").
        const failed = isRestError(error) ? Number(/^(\d+):/.exec(error.message)?.[1]) : NaN;
        // A transaction refused for another action inserted nothing; one whose fate is unknown may have taken it.
        if (candidate) this.known.settled(pool, candidate, Number.isNaN(failed) || (failed === own && code === 409));
        if (code === undefined || Number.isNaN(failed)) throw error;
        if (failed < own) throw new ActionRefused(failed, code);
        if (candidate && failed === own && code === 409) {
          candidate = (await this.freeSlot(pool, move.limit)) ?? move.whenFull;
          continue;
        }
        // The heir was handed a slot by someone else, or left: look again.
        if (heir && failed > own && code === 404) continue;
        // The slot being freed is gone already (reclaimed): free nothing.
        if (release && code === 404) {
          release = undefined;
          continue;
        }
        throw error;
      }
    }
    throw new RegistryError("TooManyRetries", `pool '${pool}' is too contended; retry`);
  }

  /**
   * Deletes slot rows whose node does not hold them (it is gone, left in-flight, or names another slot); returns the
   * rows freed. Each delete is conditional on the row's ETag, so a slot taken again meanwhile stays.
   */
  async reclaim(pool: string, holds: (nodeId: string, slot: string) => Promise<boolean>): Promise<string[]> {
    const freed: string[] = [];
    for await (const row of this.table.listEntities<{ nodeId: string }>({ queryOptions: { filter: SLOT_RANGE(pool) } })) {
      if (await holds(row.nodeId, row.rowKey!)) continue;
      try {
        await this.table.deleteEntity(pool, row.rowKey!, { etag: row.etag });
        this.known.settled(pool, row.rowKey!, false);
        freed.push(row.rowKey!);
      } catch (error) {
        if (status(error) !== 404 && status(error) !== 412) throw error;
      }
    }
    return freed;
  }

  /** The slot row's holder, if the row exists. */
  async holder(pool: string, slot: string): Promise<string | undefined> {
    return (await read(this.table, pool, slot))?.nodeId as string | undefined;
  }

  /** The nodes waiting for a slot of the pool, longest-waiting first, at most `max` of them. */
  async waiters(pool: string, max: number): Promise<string[]> {
    const filter = `PartitionKey eq '${escape(pool)}' and RowKey ge '${WAITING}' and RowKey lt 'slot:~w;'`;
    const nodes: string[] = [];
    if (max <= 0) return nodes;
    for await (const e of this.table.listEntities<{ nodeId: string }>({ queryOptions: { filter, select: ["nodeId"] } })) {
      nodes.push(e.nodeId);
      if (nodes.length >= max) break;
    }
    return nodes;
  }

  /**
   * Who a freed slot goes to: the first overflow row (an offboarding over the limit: handing it the slot changes no
   * count), else the longest-waiting node, if the slot is below the pool's limit now. A slot at or above a lowered
   * limit goes to nobody, so the pool drains back under its limit while nodes wait.
   */
  private async heirOf(pool: string, release: string, move: SlotMove): Promise<{ row: string; nodeId: string } | undefined> {
    const filter = `PartitionKey eq '${escape(pool)}' and RowKey ge '${OVERFLOW}' and RowKey lt 'slot:~~'`;
    for await (const e of this.table.listEntities<{ nodeId: string }>({ queryOptions: { filter } })) {
      if (e.nodeId === move.nodeId) continue;
      if (isWaiting(e.rowKey) && Number(release.slice("slot:".length)) >= (await move.currentLimit())) return undefined;
      return { row: e.rowKey!, nodeId: e.nodeId };
    }
    return undefined;
  }

  private async taken(pool: string): Promise<string[]> {
    const rows: string[] = [];
    for await (const e of this.table.listEntities({ queryOptions: { filter: SLOT_RANGE(pool), select: ["RowKey"] } })) rows.push(e.rowKey!);
    return rows;
  }

  /** A free slot below the limit, picked at random so contenders spread out; undefined when none is. */
  private async freeSlot(pool: string, limit: number): Promise<string | undefined> {
    const taken = (await this.taken(pool)).filter((row) => !isWaiting(row));
    const held = new Set(taken);
    const pending = this.known.listed(pool, taken);
    // Slots this process is taking right now are tried last: the service, not the memory, decides the pool is full.
    const free: number[] = [];
    const busy: number[] = [];
    if (taken.length < limit) for (let k = 0; k < limit && free.length < 64; k++) if (!held.has(slotRow(k))) (pending.has(slotRow(k)) ? busy : free).push(k);
    const pick = free.length > 0 ? free : busy;
    return pick.length === 0 ? undefined : slotRow(pick[randomInt(pick.length)]!);
  }
}

/**
 * What this process knows of each pool's slot rows: taken (by its own transactions, or in its last listing) and being
 * taken (in a transaction not yet answered). A hint only: it picks where to try first, the service decides.
 */
class KnownSlots {
  private readonly taken = new Map<string, Set<string>>();
  private readonly pending = new Map<string, Set<string>>();
  /** When the process last learnt what is taken: a listing, or a take of its own (ms, this process's clock). */
  private readonly learnt = new Map<string, number>();
  private static readonly POOLS = 1024;
  private static readonly PROBES = 64;
  private static readonly FULL_TRUSTED_MS = 10_000;

  /** The first slot from `start` (up to PROBES on) not known to be taken; `start` itself when all of those are. */
  first(pool: string, start: number, limit: number): string {
    const taken = this.taken.get(pool);
    const pending = this.pending.get(pool);
    for (let i = 0; i < Math.min(limit, KnownSlots.PROBES); i++) {
      const row = slotRow((start + i) % limit);
      if (!taken?.has(row) && !pending?.has(row)) return row;
    }
    return slotRow(start);
  }

  taking(pool: string, row: string): void {
    // Only slots below the limit are picked from memory: overflow and waiting rows are one node's each.
    if (row.startsWith(OVERFLOW)) return;
    this.set(this.pending, pool).add(row);
  }

  /** A transaction that took (or tried to take, or freed) `row` was answered: `held` says whether the row exists now. */
  settled(pool: string, row: string, held: boolean): void {
    if (row.startsWith(OVERFLOW)) return;
    this.pending.get(pool)?.delete(row);
    if (held) {
      this.set(this.taken, pool).add(row);
      this.learn(pool);
    } else this.taken.get(pool)?.delete(row);
  }

  /** A listing of the pool's slot rows replaces what was known of them; returns the rows being taken meanwhile. */
  listed(pool: string, rows: readonly string[]): ReadonlySet<string> {
    this.taken.delete(pool);
    this.set(this.taken, pool, new Set(rows));
    this.learn(pool);
    return this.pending.get(pool) ?? new Set();
  }

  forget(pool: string): void {
    this.taken.delete(pool);
  }

  /** Whether the process saw every slot of the pool taken, and recently enough to act on it without asking. */
  seenFull(pool: string, limit: number): boolean {
    const at = this.learnt.get(pool);
    return (this.taken.get(pool)?.size ?? 0) >= limit && at !== undefined && Date.now() - at < KnownSlots.FULL_TRUSTED_MS;
  }

  private learn(pool: string): void {
    this.learnt.delete(pool);
    this.learnt.set(pool, Date.now());
    if (this.learnt.size > KnownSlots.POOLS) this.learnt.delete(this.learnt.keys().next().value!);
  }

  private set(map: Map<string, Set<string>>, pool: string, initial?: Set<string>): Set<string> {
    let rows = map.get(pool);
    if (!rows) {
      // Bounded: the oldest pool is forgotten first (forgetting costs a conflict, never a wrong answer).
      if (map.size >= KnownSlots.POOLS) map.delete(map.keys().next().value!);
      map.set(pool, (rows = initial ?? new Set()));
    }
    return rows;
  }
}

/** Where a node's search for a slot starts: spread by its id, so concurrent enrolments rarely meet. */
function hashSlot(nodeId: string, limit: number): number {
  const h = createHash("sha256").update(nodeId).digest().readUIntBE(0, 6);
  return h % Math.max(1, Math.min(limit, 1 << 30));
}
