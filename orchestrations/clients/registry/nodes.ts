/**
 * Nodes, their machine fingerprints and the node/key index.
 * - Table `nodes`: PK the pool name; RK `node:<id>` (the node) and `fp:<kind>:<value>` (fingerprint → node id), beside
 *   the pool's slot rows (in-flight.ts). One partition per pool lets a node change, its fingerprints and the slot it
 *   takes or frees be one entity-group transaction.
 * - Table `index`: PK "node": RK node id → pool, and RK `key:<key id>` → pool and node (older rows: PK "key" RK key id,
 *   still read). Both in one partition so a new node's two rows are one transaction. Written before the node, so a
 *   reader may find an index row for a node that is not there yet (treated as absent) but never a node it cannot find.
 *   Enrolment request nonces live there too (RK `nonce:<key id>:<nonce>`, insert-only, purged once expired), so a
 *   first-time enrolment records its nonce in the same transaction as its index rows.
 *   A key belongs to one node: its row is inserted once and never re-pointed while the node it names still holds the
 *   key (KeyInUse). It moves only when stale (that node was re-keyed away from it) or, for an admin's re-key, from a
 *   retired node (Failed, Offboarded); every move is conditional on the row's ETag.
 * Every change is made under the node's ETag (re-read and retried on Conflict) and audited.
 */
import type { TableClient, TableTransactionResponse, TransactionAction } from "@azure/data-tables";
import { isRestError } from "@azure/core-rest-pipeline";
import type { NonceClaim } from "../../../contract/nonce-store.js";
import { IN_FLIGHT, NodeRecord, type NodeStatus } from "./model.js";
import type { AuditLog } from "./audit.js";
import { ActionRefused, type InFlightSlots } from "./in-flight.js";
import type { PoolTable } from "./pools.js";
import {
  RegistryError,
  backoff,
  escape,
  ETAG_ATTEMPTS,
  fromRow,
  insertOnce,
  page,
  purgeWhere,
  read,
  status,
  toRow,
  type Clock,
  type Page,
} from "./table-rows.js";

const nodeRow = (nodeId: string) => `node:${nodeId}`;
const INDEX = "node";
const keyRow = (keyId: string) => `key:${keyId}`;
const nonceRow = (n: NonceClaim) => ({ partitionKey: INDEX, rowKey: `nonce:${n.keyId}:${n.nonce}`, expiresAt: n.expiresAt });
export const fingerprintRows = (fp: { machineId: string; smbiosUuid?: string }): string[] => [
  `fp:machine-id:${fp.machineId.toLowerCase()}`,
  ...(fp.smbiosUuid ? [`fp:smbios-uuid:${fp.smbiosUuid.toLowerCase()}`] : []),
];

export interface NodeFilter {
  pool?: string;
  status?: NodeStatus;
  /** The code of the node's last error (its `failureCode` column). */
  failureCode?: string;
  /** ISO-8601 UTC: nodes created at or after. */
  createdSince?: string;
}

/**
 * The row of a node: its fields, plus the code of its last error as a column of its own (lastError is JSON text), so
 * lists can filter on it.
 */
const nodeEntity = (pool: string, nodeId: string, value: Partial<NodeRecord>) => toRow(pool, nodeRow(nodeId), { ...value, failureCode: value.lastError?.code });

export type NodeChange = Partial<Omit<NodeRecord, "nodeId" | "pool" | "etag" | "createdAt">>;

/** Statuses whose key no longer acts for the node (see functions/http/node-auth.ts). */
const RETIRED: ReadonlySet<NodeStatus> = new Set(["Failed", "Offboarded"]);

export class NodeTable {
  /**
   * Index rows this process has read. A node's pool never changes (its id is derived from it); a key's node may (a
   * re-key moves it), so a remembered key is trusted only when the node read through it still holds the key. Either
   * way the node row itself is read every time: only the index read is saved.
   */
  private readonly poolOf = new Map<string, string>();
  private readonly holderOf = new Map<string, { pool: string; nodeId: string }>();

  constructor(
    private readonly table: TableClient,
    private readonly index: TableClient,
    private readonly slots: Pick<InFlightSlots, "transact" | "reclaim">,
    private readonly pools: Pick<PoolTable, "spec">,
    private readonly audit: Pick<AuditLog, "write">,
    private readonly now: Clock,
  ) {}

  async get(nodeId: string): Promise<NodeRecord | undefined> {
    const known = this.poolOf.get(nodeId);
    if (known) {
      const node = await this.getInPool(known, nodeId);
      if (node) return node;
    }
    const entry = await read(this.index, INDEX, nodeId);
    if (!entry) return undefined;
    remember(this.poolOf, nodeId, entry.pool as string);
    return this.getInPool(entry.pool as string, nodeId);
  }

  async getInPool(pool: string, nodeId: string): Promise<NodeRecord | undefined> {
    const entity = await read(this.table, pool, nodeRow(nodeId));
    return entity ? NodeRecord.parse({ ...fromRow(entity), nodeId, pool }) : undefined;
  }

  async getByKey(keyId: string): Promise<NodeRecord | undefined> {
    const known = this.holderOf.get(keyId);
    if (known) {
      const node = await this.getInPool(known.pool, known.nodeId);
      if (node?.keyId === keyId) return node;
      this.holderOf.delete(keyId);
    }
    const entry = await this.keyBinding(keyId);
    if (!entry) return undefined;
    const node = await this.getInPool(entry.pool as string, entry.nodeId as string);
    if (!node || node.keyId !== keyId) return undefined;
    remember(this.holderOf, keyId, { pool: node.pool, nodeId: node.nodeId });
    return node;
  }

  /** Node ids that own a fingerprint of this machine in the pool. */
  async fingerprintOwners(pool: string, fp: { machineId: string; smbiosUuid?: string }): Promise<string[]> {
    const owners = await Promise.all(fingerprintRows(fp).map((rk) => read(this.table, pool, rk)));
    return [...new Set(owners.filter((o) => o !== undefined).map((o) => o.nodeId as string))];
  }

  async list(options: NodeFilter & { maxPageSize?: number; continuationToken?: string } = {}): Promise<Page<NodeRecord>> {
    const clauses = [`RowKey ge 'node:' and RowKey lt 'node;'`];
    if (options.pool) clauses.unshift(`PartitionKey eq '${escape(options.pool)}'`);
    if (options.status) clauses.push(`status eq '${escape(options.status)}'`);
    if (options.failureCode) clauses.push(`failureCode eq '${escape(options.failureCode)}'`);
    // ISO-8601 UTC strings sort as the times they name.
    if (options.createdSince) clauses.push(`createdAt ge '${escape(options.createdSince)}'`);
    const found = await page(this.table, clauses.join(" and "), options);
    return {
      items: found.items.map((e) => NodeRecord.parse({ ...fromRow(e), pool: e.partitionKey, nodeId: (e.rowKey as string).slice("node:".length) })),
      continuationToken: found.continuationToken,
    };
  }

  /** Whether any node of the pool is anything but Offboarded (a pool with such a node cannot be deleted). */
  async hasLiveNodes(pool: string): Promise<boolean> {
    const filter = `PartitionKey eq '${escape(pool)}' and RowKey ge 'node:' and RowKey lt 'node;' and status ne 'Offboarded'`;
    // Iterated, not one page: a filtered query may answer an empty page with a continuation.
    for await (const _ of this.table.listEntities({ queryOptions: { filter, select: ["RowKey"] } })) return true;
    return false;
  }

  /**
   * Creates a node, its fingerprint rows and, if it starts in flight, takes one of the pool's slots: one transaction.
   * Refused with PoolFull when the pool has no slot, NodeExists when the node is there already, and FingerprintTaken
   * when `fingerprints` is "insert" and another node owns one of them (the caller looks for a clone).
   * `pool` is the pool as the caller read it (its limit); read here when not given.
   */
  async create(
    node: Omit<NodeRecord, "etag" | "createdAt" | "updatedAt" | "slot">,
    actor: string,
    options: { claimFingerprint?: boolean; fingerprints?: "insert" | "upsert"; pool?: { maxInFlight: number }; nonce?: NonceClaim } = {},
  ): Promise<NodeRecord> {
    const pool = options.pool ?? (await this.pools.spec(node.pool));
    if (!pool) throw new RegistryError("PoolNotFound", `pool '${node.pool}' does not exist`);
    await this.writeIndex(node, { isNew: true, nonce: options.nonce });
    const at = this.now().toISOString();
    const fingerprintAction = options.fingerprints === "insert" ? "create" : "upsert";
    const { slot, response } = await this.withKeyReleasedOnFailure(node, () =>
      this.transact(node.pool, { nodeId: node.nodeId, inFlight: IN_FLIGHT.has(node.status), limit: pool.maxInFlight }, (slot) => [
        ["create", nodeEntity(node.pool, node.nodeId, { ...node, slot, createdAt: at, updatedAt: at })],
        // A quarantined clone leaves the fingerprint with the node that had it until an admin decides.
        ...(options.claimFingerprint === false ? [] : fingerprintRows(node.fingerprint)).map((rk): TransactionAction =>
          fingerprintAction === "create"
            ? ["create", { partitionKey: node.pool, rowKey: rk, nodeId: node.nodeId }]
            : ["upsert", { partitionKey: node.pool, rowKey: rk, nodeId: node.nodeId }, "Replace"],
        ),
      ]),
    );
    await this.audit.write({
      actor,
      action: "node.enrol",
      objectType: "node",
      objectId: node.nodeId,
      details: { pool: node.pool, status: node.status, tokenId: node.tokenId, keyId: node.keyId },
    });
    return NodeRecord.parse({ ...node, slot, createdAt: at, updatedAt: at, etag: etagOf(response) });
  }

  /**
   * Changes a node under its ETag; moving into or out of an in-flight status takes or frees the node's pool slot in
   * the same transaction. `expect` lists the statuses the change is valid from (Conflict otherwise). A `ref` that is
   * the node as the caller read it (with its ETag) is tried as is first; it is re-read only on a conflict.
   */
  async update(
    ref: { pool: string; nodeId: string } | NodeRecord,
    change: (node: NodeRecord) => NodeChange | undefined,
    actor: string,
    action: string,
    options: { expect?: NodeStatus[]; takeKeyFromRetired?: boolean } = {},
  ): Promise<NodeRecord> {
    let known: NodeRecord | undefined = "etag" in ref ? ref : undefined;
    for (let i = 0; i < ETAG_ATTEMPTS; i++) {
      const given = known;
      known = undefined;
      const node = given ?? (await this.getInPool(ref.pool, ref.nodeId));
      if (!node) throw new RegistryError("NodeNotFound", `node '${ref.nodeId}' does not exist`);
      if (options.expect && !options.expect.includes(node.status)) {
        if (given) continue; // the caller's copy may be old: decide on a fresh read
        throw new RegistryError("Conflict", `node '${ref.nodeId}' is ${node.status}, not ${options.expect.join(" or ")}`);
      }
      const patch = change(node);
      if (!patch) return node;
      const next: NodeRecord = { ...node, ...patch, updatedAt: this.now().toISOString() };
      // A new key, or a retired node coming back: the key must (still) be this node's alone.
      const rebind = next.keyId !== node.keyId || (RETIRED.has(node.status) && !RETIRED.has(next.status));
      if (rebind) await this.writeIndex(next, { takeFromRetired: options.takeKeyFromRetired });
      const inFlight = IN_FLIGHT.has(next.status);
      // Only taking a slot needs the limit. Offboarding frees resources: it takes a slot but is never refused.
      const limit = inFlight && !node.slot ? ((await this.pools.spec(ref.pool))?.maxInFlight ?? 1) : 0;
      let moved: { slot: string | undefined; response: TableTransactionResponse };
      try {
        moved = await this.transact(ref.pool, { nodeId: ref.nodeId, held: node.slot, inFlight, limit, overflow: next.status === "Offboarding" }, (slot) => [
          ["update", nodeEntity(ref.pool, ref.nodeId, { ...next, slot, nodeId: undefined, pool: undefined }), "Replace", { etag: node.etag }],
          ...(next.fingerprint !== node.fingerprint
            ? fingerprintRows(next.fingerprint).map((rk): TransactionAction => [
                "upsert",
                { partitionKey: ref.pool, rowKey: rk, nodeId: ref.nodeId },
                "Replace",
              ])
            : []),
        ]);
      } catch (error) {
        if (error instanceof RegistryError && error.code === "Conflict") {
          await backoff(i);
          continue;
        }
        throw error;
      }
      const keyMoved = next.keyId !== node.keyId;
      if (keyMoved) await this.releaseKey(node.keyId, ref.nodeId);
      await this.audit.write({
        actor,
        action,
        objectType: "node",
        objectId: ref.nodeId,
        details: { from: node.status, to: next.status, ...(keyMoved ? { keyFrom: node.keyId, keyTo: next.keyId } : {}) },
      });
      return NodeRecord.parse({ ...next, slot: moved.slot, etag: etagOf(moved.response) });
    }
    throw new RegistryError("TooManyRetries", `node '${ref.nodeId}' is too contended; retry`);
  }

  /** Records an enrolment request's nonce; NonceUsed when it was recorded before (a replayed request). */
  async claimNonce(nonce: NonceClaim): Promise<void> {
    if (!(await insertOnce(this.index, nonceRow(nonce)))) throw new RegistryError("NonceUsed", "the request was already received");
  }

  /** Deletes enrolment nonces past their expiry; returns how many went. */
  purgeNonces(now: Date): Promise<number> {
    return purgeWhere(this.index, `PartitionKey eq '${INDEX}' and RowKey ge 'nonce:' and RowKey lt 'nonce;' and expiresAt lt datetime'${now.toISOString()}'`);
  }

  /** Frees slots of the pool no node holds (see in-flight.ts); returns the rows freed. */
  reclaimSlots(pool: string): Promise<string[]> {
    return this.slots.reclaim(pool, async (nodeId, slot) => {
      const node = await this.getInPool(pool, nodeId);
      return node !== undefined && IN_FLIGHT.has(node.status) && node.slot === slot;
    });
  }

  /** The slot transaction, with the node's own refusals named: its row (action 0) and its fingerprints. */
  private async transact(...args: Parameters<InFlightSlots["transact"]>): ReturnType<InFlightSlots["transact"]> {
    try {
      return await this.slots.transact(...args);
    } catch (error) {
      if (!(error instanceof ActionRefused)) throw error;
      if (error.index === 0 && error.status === 409) throw new RegistryError("NodeExists", "the node exists already");
      if (error.index === 0 && (error.status === 412 || error.status === 404)) throw new RegistryError("Conflict", "the node changed concurrently");
      if (error.status === 409) throw new RegistryError("FingerprintTaken", "another node owns this machine's fingerprint");
      throw error;
    }
  }

  private async keyBinding(keyId: string) {
    return (await read(this.index, INDEX, keyRow(keyId))) ?? (await read(this.index, "key", keyId));
  }

  /**
   * Points the node id and its key id at the node (before the node row is written; see the header). A new node's
   * two rows go in one transaction; a key bound already takes the slower path of bindKey.
   */
  private async writeIndex(
    node: { nodeId: string; pool: string; keyId: string },
    options: { takeFromRetired?: boolean; isNew?: boolean; nonce?: NonceClaim } = {},
  ): Promise<void> {
    const nodeEntry = { partitionKey: INDEX, rowKey: node.nodeId, pool: node.pool };
    if (options.isNew) {
      try {
        await this.index.submitTransaction([
          ["upsert", nodeEntry, "Replace"],
          ["create", { partitionKey: INDEX, rowKey: keyRow(node.keyId), pool: node.pool, nodeId: node.nodeId }],
          ...(options.nonce ? [["create", nonceRow(options.nonce)] as TransactionAction] : []),
        ]);
        return;
      } catch (error) {
        if (status(error) !== 409) throw error;
        const failed = isRestError(error) ? Number(/^(\d+):/.exec(error.message)?.[1]) : NaN;
        if (failed === 2) throw new RegistryError("NonceUsed", "the request was already received");
      }
    }
    if (options.nonce) await this.claimNonce(options.nonce);
    await this.index.upsertEntity(nodeEntry, "Replace");
    await this.bindKey(node, options);
  }

  /**
   * Binds the key to the node: inserted once; an existing binding to another node is re-pointed (under its ETag) only
   * when that node no longer holds the key, or when an admin re-keys and that node is retired. A binding whose node is
   * not (yet) there counts as held: it is a create in flight, or one that failed and released nothing.
   */
  private async bindKey(node: { nodeId: string; pool: string; keyId: string }, options: { takeFromRetired?: boolean }): Promise<void> {
    const row = { partitionKey: INDEX, rowKey: keyRow(node.keyId), pool: node.pool, nodeId: node.nodeId };
    for (let i = 0; i < ETAG_ATTEMPTS; i++) {
      if (await insertOnce(this.index, row)) return;
      const bound = await read(this.index, INDEX, keyRow(node.keyId));
      if (!bound) continue;
      if (bound.nodeId === node.nodeId && bound.pool === node.pool) return;
      const holder = await this.getInPool(bound.pool as string, bound.nodeId as string);
      const free = holder !== undefined && (holder.keyId !== node.keyId || (options.takeFromRetired === true && RETIRED.has(holder.status)));
      if (!free) {
        throw new RegistryError(
          "KeyInUse",
          `key ${node.keyId} is bound to node '${bound.nodeId as string}'${holder ? ` (${holder.status})` : ""}; a node needs its own key, and moving one is an admin's re-key`,
        );
      }
      try {
        await this.index.updateEntity(row, "Replace", { etag: bound.etag });
        return;
      } catch (error) {
        if (status(error) !== 412 && status(error) !== 404) throw error;
        await backoff(i);
      }
    }
    throw new RegistryError("TooManyRetries", `key ${node.keyId} is too contended; retry`);
  }

  /** Drops the key's binding to this node, if it is still there and the node does not hold the key. */
  private async releaseKey(keyId: string, nodeId: string): Promise<void> {
    const bound = await read(this.index, INDEX, keyRow(keyId));
    if (!bound || bound.nodeId !== nodeId) return;
    const node = await this.getInPool(bound.pool as string, nodeId);
    if (node?.keyId === keyId) return;
    try {
      await this.index.deleteEntity(INDEX, keyRow(keyId), { etag: bound.etag });
    } catch (error) {
      if (status(error) !== 412 && status(error) !== 404) throw error;
    }
  }

  /** A create that fails after binding its key (pool full, a lost race) must not keep the key from the next try. */
  private async withKeyReleasedOnFailure<T>(node: { nodeId: string; keyId: string }, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      await this.releaseKey(node.keyId, node.nodeId);
      throw error;
    }
  }
}

/** The ETag of action 0 (the node's row) of a transaction. */
const etagOf = (response: TableTransactionResponse): string => {
  const etag = response.subResponses[0]?.etag;
  if (!etag) throw new Error("the transaction answered without the node's ETag");
  return etag;
};

const REMEMBERED = 50_000;
/** Remembers an index entry, forgetting everything once the map is full (a cache, not a record). */
function remember<V>(map: Map<string, V>, key: string, value: V): void {
  if (map.size >= REMEMBERED) map.clear();
  map.set(key, value);
}
