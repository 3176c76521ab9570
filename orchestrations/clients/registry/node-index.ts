/**
 * The node/key index. Table `index`, PK "node": RK node id → pool, RK `key:<key id>` → pool and node (older rows:
 * PK "key" RK key id, still read), and RK `machine:<SHA-256 of the lower-cased resource id>` → pool and node for an Arc
 * machine a node adopted (azcmagent named it, so its name says nothing; its delete event must still find the node).
 * All in one partition, so a new node's two rows are one transaction. Written before the node, so a reader may find an
 * index row for a node that is not there yet (treated as absent) but never a node it cannot find. A key belongs to one
 * node: its row is inserted once and never re-pointed while the node it names still holds the key (KeyInUse). It moves
 * only when stale (that node was re-keyed away from it) or, for an admin's re-key, from a retired node (Failed,
 * Offboarded); every move is conditional on the row's ETag.
 *
 * Enrolment request nonces live in the same partition (RK `nonce:<key id>:<nonce>`, insert-only, purged once expired),
 * and so do enrolment tokens (RK `token:<token id>`, tokens.ts): a first-time enrolment records its nonce, and takes a
 * single-use token's use, in the same transaction as its index rows.
 *
 * Entries this process has read are remembered: a node's pool never changes (its id is derived from it); a key's node
 * may (a re-key moves it), so the node table trusts a remembered key only when the node read through it still holds it.
 */
import { createHash } from "node:crypto";
import type { TableClient, TransactionAction } from "@azure/data-tables";
import { isRestError } from "@azure/core-rest-pipeline";
import type { NonceClaim } from "../../../contract/nonce-store.js";
import type { NodeStatus } from "./model.js";
import { RegistryError, backoff, ETAG_ATTEMPTS, insertOnce, purgeWhere, read, status } from "./table-rows.js";

const INDEX = "node";
/** The partition that holds the whole index, and the enrolment tokens (tokens.ts). */
export const INDEX_PARTITION = INDEX;
const keyRow = (keyId: string) => `key:${keyId}`;
/** Resource ids are case-insensitive and hold characters a row key may not ('/'): hashed. */
const machineRow = (machineId: string) => `machine:${createHash("sha256").update(machineId.toLowerCase()).digest("hex")}`;
const nonceRow = (n: NonceClaim) => ({ partitionKey: INDEX, rowKey: `nonce:${n.keyId}:${n.nonce}`, expiresAt: n.expiresAt });
/** Statuses whose key no longer acts for the node (see functions/http/node-auth.ts). */
const RETIRED: ReadonlySet<NodeStatus> = new Set(["Failed", "Offboarded"]);
const REMEMBERED = 50_000;

/** The key is bound already (to this node or another): the caller asked to bind new keys only. Nothing was written. */
export class KeyAlreadyBound extends Error {
  constructor(keyId: string) {
    super(`key ${keyId} is bound already`);
    this.name = "KeyAlreadyBound";
  }
}

export class NodeIndex {
  private readonly pools = new Map<string, string>();
  private readonly keys = new Map<string, { pool: string; nodeId: string }>();

  constructor(
    private readonly table: TableClient,
    /** The node as the node table has it (to tell whether it still holds a key). */
    private readonly holder: (pool: string, nodeId: string) => Promise<{ keyId: string; status: NodeStatus } | undefined>,
  ) {}

  rememberedPool(nodeId: string): string | undefined {
    return this.pools.get(nodeId);
  }

  /** A node row was found in this pool (a node's pool never changes). */
  rememberPool(nodeId: string, pool: string): void {
    if (this.pools.get(nodeId) !== pool) remember(this.pools, nodeId, pool);
  }

  async poolOf(nodeId: string): Promise<string | undefined> {
    const entry = await read(this.table, INDEX, nodeId);
    if (entry) remember(this.pools, nodeId, entry.pool as string);
    return entry?.pool as string | undefined;
  }

  rememberedKey(keyId: string): { pool: string; nodeId: string } | undefined {
    return this.keys.get(keyId);
  }

  rememberKey(keyId: string, holder: { pool: string; nodeId: string }): void {
    remember(this.keys, keyId, holder);
  }

  /** Records an enrolment request's nonce; NonceUsed when it was recorded before (a replayed request). */
  async claimNonce(nonce: NonceClaim): Promise<void> {
    if (!(await insertOnce(this.table, nonceRow(nonce)))) throw new RegistryError("NonceUsed", "the request was already received");
  }

  /** Deletes enrolment nonces past their expiry; returns how many went. */
  purgeNonces(now: Date): Promise<number> {
    return purgeWhere(this.table, `PartitionKey eq '${INDEX}' and RowKey ge 'nonce:' and RowKey lt 'nonce;' and expiresAt lt datetime'${now.toISOString()}'`);
  }

  /** The key's binding (pool, node), if any. */
  async keyBinding(keyId: string) {
    return (await read(this.table, INDEX, keyRow(keyId))) ?? (await read(this.table, "key", keyId));
  }

  /**
   * Points the node id and its key id at the node (before the node row is written; see the header). A new node's
   * two rows go in one transaction, with the request's nonce and `alsoUse` (a token's use, tokens.ts `useAction`);
   * a key bound already takes the slower path of bindKey. True when `alsoUse` was written: it is refused with the
   * transaction when its row changed since it was read, and the rest is then written without it.
   */
  async write(
    node: { nodeId: string; pool: string; keyId: string },
    options: { takeFromRetired?: boolean; isNew?: boolean; nonce?: NonceClaim; newKeyOnly?: boolean; alsoUse?: TransactionAction } = {},
  ): Promise<boolean> {
    const nodeEntry = { partitionKey: INDEX, rowKey: node.nodeId, pool: node.pool };
    if (options.isNew) {
      const use = options.alsoUse;
      const actions: TransactionAction[] = [
        ["upsert", nodeEntry, "Replace"],
        ["create", { partitionKey: INDEX, rowKey: keyRow(node.keyId), pool: node.pool, nodeId: node.nodeId }],
      ];
      if (options.nonce) actions.push(["create", nonceRow(options.nonce)]);
      if (use) actions.push(use);
      try {
        await this.table.submitTransaction(actions);
        return use !== undefined;
      } catch (error) {
        const code = status(error);
        // The service names the failed action by index at the start of its message ("1:The specified entity…").
        const failed = isRestError(error) ? Number(/^(\d+):/.exec(error.message)?.[1]) : NaN;
        // The token changed since it was read: nothing was written; the rest goes again without its use.
        if (use && failed === actions.length - 1 && (code === 412 || code === 404)) return this.write(node, { ...options, alsoUse: undefined });
        if (code !== 409) throw error;
        if (options.nonce && failed === 2) throw new RegistryError("NonceUsed", "the request was already received");
        if (failed === 1 && options.newKeyOnly) throw new KeyAlreadyBound(node.keyId);
      }
    }
    if (options.nonce) await this.claimNonce(options.nonce);
    await this.table.upsertEntity(nodeEntry, "Replace");
    await this.bindKey(node, options);
    return false;
  }

  /**
   * Binds the key to the node: inserted once; an existing binding to another node is re-pointed (under its ETag) only
   * when that node no longer holds the key, or when an admin re-keys and that node is retired. A binding whose node is
   * not (yet) there counts as held: it is a create in flight, or one that failed and released nothing.
   */
  private async bindKey(node: { nodeId: string; pool: string; keyId: string }, options: { takeFromRetired?: boolean }): Promise<void> {
    const row = { partitionKey: INDEX, rowKey: keyRow(node.keyId), pool: node.pool, nodeId: node.nodeId };
    for (let i = 0; i < ETAG_ATTEMPTS; i++) {
      if (await insertOnce(this.table, row)) return;
      const bound = await read(this.table, INDEX, keyRow(node.keyId));
      if (!bound) continue;
      if (bound.nodeId === node.nodeId && bound.pool === node.pool) return;
      const holder = await this.holder(bound.pool as string, bound.nodeId as string);
      const free = holder !== undefined && (holder.keyId !== node.keyId || (options.takeFromRetired === true && RETIRED.has(holder.status)));
      if (!free) {
        throw new RegistryError(
          "KeyInUse",
          `key ${node.keyId} is bound to node '${bound.nodeId as string}'${holder ? ` (${holder.status})` : ""}; a node needs its own key, and moving one is an admin's re-key`,
        );
      }
      try {
        await this.table.updateEntity(row, "Replace", { etag: bound.etag });
        return;
      } catch (error) {
        if (status(error) !== 412 && status(error) !== 404) throw error;
        await backoff(i);
      }
    }
    throw new RegistryError("TooManyRetries", `key ${node.keyId} is too contended; retry`);
  }

  /** Points an adopted Arc machine at its node (before the node records it; see the header). Idempotent. */
  async bindMachine(machineId: string, node: { pool: string; nodeId: string }): Promise<void> {
    await this.table.upsertEntity({ partitionKey: INDEX, rowKey: machineRow(machineId), pool: node.pool, nodeId: node.nodeId, machineId }, "Replace");
  }

  /** The node an adopted Arc machine was bound to, if any (the node may not have recorded it yet). */
  async machineBinding(machineId: string): Promise<{ pool: string; nodeId: string } | undefined> {
    const entry = await read(this.table, INDEX, machineRow(machineId));
    return entry ? { pool: entry.pool as string, nodeId: entry.nodeId as string } : undefined;
  }

  /** Drops the key's binding to this node, if it is still there and the node does not hold the key. */
  async releaseKey(keyId: string, nodeId: string): Promise<void> {
    const bound = await read(this.table, INDEX, keyRow(keyId));
    if (!bound || bound.nodeId !== nodeId) return;
    const node = await this.holder(bound.pool as string, nodeId);
    if (node?.keyId === keyId) return;
    try {
      await this.table.deleteEntity(INDEX, keyRow(keyId), { etag: bound.etag });
    } catch (error) {
      if (status(error) !== 412 && status(error) !== 404) throw error;
    }
  }
}

/** Remembers an index entry, forgetting everything once the map is full (a cache, not a record). */
function remember<V>(map: Map<string, V>, key: string, value: V): void {
  if (map.size >= REMEMBERED) map.clear();
  map.set(key, value);
}
