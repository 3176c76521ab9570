/**
 * Nodes, their machine fingerprints and the node/key index.
 * - Table `nodes`: PK the pool name; RK `node:<id>` (the node) and `fp:<kind>:<value>` (fingerprint → node id), beside
 *   the pool's `$counter` row (in-flight.ts). One partition per pool lets a node change and its move of the in-flight
 *   count be one entity-group transaction.
 * - Table `index`: PK "node" RK node id → pool; PK "key" RK key id → pool and node. Written before the node, so a
 *   reader may find an index row for a node that is not there yet (treated as absent) but never a node it cannot find.
 *   A key belongs to one node: its row is inserted once and never re-pointed while the node it names still holds the
 *   key (KeyInUse). It moves only when stale (that node was re-keyed away from it) or, for an admin's re-key, from a
 *   retired node (Failed, Offboarded); every move is conditional on the row's ETag.
 * Every change is made under the node's ETag (re-read and retried on Conflict) and audited.
 */
import type { TableClient, TransactionAction } from "@azure/data-tables";
import { IN_FLIGHT, NodeRecord, type NodeStatus } from "./model.js";
import type { AuditLog } from "./audit.js";
import type { InFlightCounter } from "./in-flight.js";
import type { PoolTable } from "./pools.js";
import { RegistryError, backoff, escape, ETAG_ATTEMPTS, fromRow, insertOnce, page, read, status, toRow, type Clock, type Page } from "./table-rows.js";

const nodeRow = (nodeId: string) => `node:${nodeId}`;
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
  constructor(
    private readonly table: TableClient,
    private readonly index: TableClient,
    private readonly counter: Pick<InFlightCounter, "transact">,
    private readonly pools: Pick<PoolTable, "get">,
    private readonly audit: Pick<AuditLog, "write">,
    private readonly now: Clock,
  ) {}

  async get(nodeId: string): Promise<NodeRecord | undefined> {
    const entry = await read(this.index, "node", nodeId);
    if (!entry) return undefined;
    return this.getInPool(entry.pool as string, nodeId);
  }

  async getInPool(pool: string, nodeId: string): Promise<NodeRecord | undefined> {
    const entity = await read(this.table, pool, nodeRow(nodeId));
    return entity ? NodeRecord.parse({ ...fromRow(entity), nodeId, pool }) : undefined;
  }

  async getByKey(keyId: string): Promise<NodeRecord | undefined> {
    const entry = await read(this.index, "key", keyId);
    if (!entry) return undefined;
    const node = await this.getInPool(entry.pool as string, entry.nodeId as string);
    return node && node.keyId === keyId ? node : undefined;
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
   * Refused with PoolFull when the pool has no slot, NodeExists when the node is there already.
   */
  async create(node: Omit<NodeRecord, "etag" | "createdAt" | "updatedAt">, actor: string, options: { claimFingerprint?: boolean } = {}): Promise<NodeRecord> {
    const pool = await this.pools.get(node.pool);
    if (!pool) throw new RegistryError("PoolNotFound", `pool '${node.pool}' does not exist`);
    // Checked first so a duplicate is reported as such even in a full pool; the transaction's 409 covers races.
    if (await read(this.table, node.pool, nodeRow(node.nodeId))) throw new RegistryError("NodeExists", `node '${node.nodeId}' exists already`);
    await this.writeIndex(node);
    const at = this.now().toISOString();
    await this.withKeyReleasedOnFailure(node, () =>
      this.counter.transact(node.pool, pool.maxInFlight, IN_FLIGHT.has(node.status) ? 1 : 0, () => [
        ["create", nodeEntity(node.pool, node.nodeId, { ...node, createdAt: at, updatedAt: at })],
        // A quarantined clone leaves the fingerprint with the node that had it until an admin decides.
        ...(options.claimFingerprint === false ? [] : fingerprintRows(node.fingerprint)).map((rk): TransactionAction => [
          "upsert",
          { partitionKey: node.pool, rowKey: rk, nodeId: node.nodeId },
          "Replace",
        ]),
      ]),
    );
    await this.audit.write({
      actor,
      action: "node.enrol",
      objectType: "node",
      objectId: node.nodeId,
      details: { pool: node.pool, status: node.status, tokenId: node.tokenId, keyId: node.keyId },
    });
    return (await this.getInPool(node.pool, node.nodeId))!;
  }

  /**
   * Changes a node under its ETag; moving into or out of an in-flight status takes or frees the pool slot in the same
   * transaction. `expect` lists the statuses the change is valid from (Conflict otherwise).
   */
  async update(
    ref: { pool: string; nodeId: string },
    change: (node: NodeRecord) => NodeChange | undefined,
    actor: string,
    action: string,
    options: { expect?: NodeStatus[]; takeKeyFromRetired?: boolean } = {},
  ): Promise<NodeRecord> {
    for (let i = 0; i < ETAG_ATTEMPTS; i++) {
      const node = await this.getInPool(ref.pool, ref.nodeId);
      if (!node) throw new RegistryError("NodeNotFound", `node '${ref.nodeId}' does not exist`);
      if (options.expect && !options.expect.includes(node.status))
        throw new RegistryError("Conflict", `node '${ref.nodeId}' is ${node.status}, not ${options.expect.join(" or ")}`);
      const patch = change(node);
      if (!patch) return node;
      const next = { ...node, ...patch, updatedAt: this.now().toISOString() };
      // A new key, or a retired node coming back: the key must (still) be this node's alone.
      const rebind = next.keyId !== node.keyId || (RETIRED.has(node.status) && !RETIRED.has(next.status));
      if (rebind) await this.writeIndex(next, { takeFromRetired: options.takeKeyFromRetired });
      const delta = (IN_FLIGHT.has(next.status) ? 1 : 0) - (IN_FLIGHT.has(node.status) ? 1 : 0);
      const pool = await this.pools.get(ref.pool);
      // Offboarding frees resources: it takes a slot (it is saga work) but is never refused for a full pool.
      const limit = next.status === "Offboarding" ? Number.MAX_SAFE_INTEGER : (pool?.maxInFlight ?? Number.MAX_SAFE_INTEGER);
      try {
        await this.counter.transact(ref.pool, limit, delta, () => [
          ["update", nodeEntity(ref.pool, ref.nodeId, { ...next, nodeId: undefined, pool: undefined }), "Replace", { etag: node.etag }],
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
      return (await this.getInPool(ref.pool, ref.nodeId))!;
    }
    throw new RegistryError("TooManyRetries", `node '${ref.nodeId}' is too contended; retry`);
  }

  /** Points the node id and its key id at the node (before the node row is written; see the header). */
  private async writeIndex(node: { nodeId: string; pool: string; keyId: string }, options: { takeFromRetired?: boolean } = {}): Promise<void> {
    await this.index.upsertEntity({ partitionKey: "node", rowKey: node.nodeId, pool: node.pool }, "Replace");
    await this.bindKey(node, options);
  }

  /**
   * Binds the key to the node: inserted once; an existing binding to another node is re-pointed (under its ETag) only
   * when that node no longer holds the key, or when an admin re-keys and that node is retired. A binding whose node is
   * not (yet) there counts as held: it is a create in flight, or one that failed and released nothing.
   */
  private async bindKey(node: { nodeId: string; pool: string; keyId: string }, options: { takeFromRetired?: boolean }): Promise<void> {
    const row = { partitionKey: "key", rowKey: node.keyId, pool: node.pool, nodeId: node.nodeId };
    for (let i = 0; i < ETAG_ATTEMPTS; i++) {
      if (await insertOnce(this.index, row)) return;
      const bound = await read(this.index, "key", node.keyId);
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
    const bound = await read(this.index, "key", keyId);
    if (!bound || bound.nodeId !== nodeId) return;
    const node = await this.getInPool(bound.pool as string, nodeId);
    if (node?.keyId === keyId) return;
    try {
      await this.index.deleteEntity("key", keyId, { etag: bound.etag });
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
