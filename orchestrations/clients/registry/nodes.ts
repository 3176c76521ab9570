/**
 * Nodes and their machine fingerprints.
 * - Table `nodes`: PK the pool name; RK `node:<id>` (the node) and `fp:<kind>:<value>` (fingerprint → node id), beside
 *   the pool's slot rows (in-flight.ts). One partition per pool lets a node change, its fingerprints and the slot it
 *   takes or frees be one entity-group transaction.
 * - Table `index` (node-index.ts): node id → pool, key id → node, and enrolment nonces; written before the node.
 * Every change is made under the node's ETag (the caller's copy first, re-read and retried on Conflict) and audited.
 */
import type { TableClient, TableTransactionResponse, TransactionAction } from "@azure/data-tables";
import type { NonceClaim } from "../../../contract/nonce-store.js";
import { IN_FLIGHT, NodeRecord, type NodeStatus } from "./model.js";
import type { AuditLog } from "./audit.js";
import { ActionRefused, isWaiting, overflowRow, waitingRow, type InFlightSlots } from "./in-flight.js";
import { noteHandoff } from "./slot-handoffs.js";
import { NodeIndex } from "./node-index.js";
import type { PoolTable } from "./pools.js";
import { RegistryError, backoff, escape, ETAG_ATTEMPTS, fromRow, page, read, toRow, type Clock, type Page } from "./table-rows.js";

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
const ENDS_A_RUN: ReadonlySet<NodeStatus> = new Set(["Ready", "Failed", "Offboarded"]);

/** How many nodes' last-seen copies a process keeps (`recent`). */
const RECENT_NODES = 4096;

export class NodeTable {
  private readonly index: NodeIndex;
  private readonly seen = new Map<string, NodeRecord>();

  constructor(
    private readonly table: TableClient,
    indexTable: TableClient,
    private readonly slots: Pick<InFlightSlots, "transact" | "reclaim" | "promote" | "waiters">,
    private readonly pools: Pick<PoolTable, "spec">,
    private readonly audit: Pick<AuditLog, "write">,
    private readonly now: Clock,
  ) {
    this.index = new NodeIndex(indexTable, (pool, nodeId) => this.getInPool(pool, nodeId));
  }

  /**
   * Indexes a node about to be created under a key nobody holds, recording the request's nonce with it, and taking
   * `tokenUse` (TokenTable.useAction) when the token is as it was read (one transaction; `create` with `indexed`
   * follows). True when the token's use was taken. KeyAlreadyBound, writing nothing, when the key is bound already.
   */
  bindNew(node: { nodeId: string; pool: string; keyId: string }, nonce: NonceClaim | undefined, tokenUse?: TransactionAction): Promise<boolean> {
    return this.index.write(node, { isNew: true, nonce, newKeyOnly: true, alsoUse: tokenUse });
  }

  /** Drops the key's binding to this node unless the node holds the key (a create that did not happen). */
  releaseKey(keyId: string, nodeId: string): Promise<void> {
    return this.index.releaseKey(keyId, nodeId);
  }

  /** Records an enrolment request's nonce; NonceUsed when it was recorded before (a replayed request). */
  claimNonce(nonce: NonceClaim): Promise<void> {
    return this.index.claimNonce(nonce);
  }

  /** Deletes enrolment nonces past their expiry; returns how many went. */
  purgeNonces(now: Date): Promise<number> {
    return this.index.purgeNonces(now);
  }

  async get(nodeId: string): Promise<NodeRecord | undefined> {
    const known = this.index.rememberedPool(nodeId);
    if (known) {
      const node = await this.getInPool(known, nodeId);
      if (node) return node;
    }
    const pool = await this.index.poolOf(nodeId);
    return pool ? this.getInPool(pool, nodeId) : undefined;
  }

  async getInPool(pool: string, nodeId: string): Promise<NodeRecord | undefined> {
    const entity = await read(this.table, pool, nodeRow(nodeId));
    return entity ? this.saw(NodeRecord.parse({ ...fromRow(entity), nodeId, pool })) : undefined;
  }

  /**
   * The node as this process last read or wrote it, with its ETag: possibly stale, so only a ref for `update` (whose
   * write is under that ETag: a stale copy costs a conflict and a re-read, never a lost change).
   */
  recent(nodeId: string): NodeRecord | undefined {
    return this.seen.get(nodeId);
  }

  private saw(node: NodeRecord): NodeRecord {
    this.index.rememberPool(node.nodeId, node.pool);
    this.seen.delete(node.nodeId);
    this.seen.set(node.nodeId, node);
    if (this.seen.size > RECENT_NODES) this.seen.delete(this.seen.keys().next().value!);
    return node;
  }

  /** The node that adopted this Arc machine (node-index.ts), if it still names it. */
  async getByAdoptedMachine(machineId: string): Promise<NodeRecord | undefined> {
    const bound = await this.index.machineBinding(machineId);
    const node = bound && (await this.getInPool(bound.pool, bound.nodeId));
    return node?.arcMachineId?.toLowerCase() === machineId.toLowerCase() ? node : undefined;
  }

  async getByKey(keyId: string): Promise<NodeRecord | undefined> {
    const known = this.index.rememberedKey(keyId);
    if (known) {
      const node = await this.getInPool(known.pool, known.nodeId);
      if (node?.keyId === keyId) return node;
    }
    const entry = await this.index.keyBinding(keyId);
    if (!entry) return undefined;
    const node = await this.getInPool(entry.pool as string, entry.nodeId as string);
    if (!node || node.keyId !== keyId) return undefined;
    this.index.rememberKey(keyId, { pool: node.pool, nodeId: node.nodeId });
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
   * Creates a node, its fingerprint rows and, if it starts in flight, takes one of the pool's slots or, when none is
   * free, a place among the nodes waiting for one: one transaction.
   * Refused with NodeExists when the node is there already, and FingerprintTaken
   * when `fingerprints` is "insert" and another node owns one of them (the caller looks for a clone).
   * `pool` is the pool as the caller read it (its limit); read here when not given.
   */
  async create(
    node: Omit<NodeRecord, "etag" | "createdAt" | "updatedAt" | "slot">,
    actor: string,
    options: { claimFingerprint?: boolean; fingerprints?: "insert" | "upsert"; pool?: { maxInFlight: number }; nonce?: NonceClaim; indexed?: boolean } = {},
  ): Promise<NodeRecord> {
    const pool = options.pool ?? (await this.pools.spec(node.pool));
    if (!pool) throw new RegistryError("PoolNotFound", `pool '${node.pool}' does not exist`);
    if (!options.indexed) await this.index.write(node, { isNew: true, nonce: options.nonce });
    const at = this.now().toISOString();
    const fingerprintAction = options.fingerprints === "insert" ? "create" : "upsert";
    const { slot, response } = await this.withKeyReleasedOnFailure(node, () =>
      this.transact(
        node.pool,
        {
          nodeId: node.nodeId,
          inFlight: IN_FLIGHT.has(node.status),
          limit: pool.maxInFlight,
          whenFull: waitingRow(this.now(), node.nodeId),
          at,
          currentLimit: async () => pool.maxInFlight,
        },
        (slot) => [
          ["create", nodeEntity(node.pool, node.nodeId, { ...node, slot, createdAt: at, updatedAt: at })],
          // A quarantined clone leaves the fingerprint with the node that had it until an admin decides.
          ...(options.claimFingerprint === false ? [] : fingerprintRows(node.fingerprint)).map((rk): TransactionAction =>
            fingerprintAction === "create"
              ? ["create", { partitionKey: node.pool, rowKey: rk, nodeId: node.nodeId }]
              : ["upsert", { partitionKey: node.pool, rowKey: rk, nodeId: node.nodeId }, "Replace"],
          ),
        ],
      ),
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
    /** The audit action; null for the service's own bookkeeping (createdObjects), which the node's transitions frame. */
    action: string | null,
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
      if (rebind) await this.index.write(next, { takeFromRetired: options.takeKeyFromRetired });
      if (next.arcMachineId && next.arcMachineId !== node.arcMachineId) await this.index.bindMachine(next.arcMachineId, next);
      // A node in flight since before slots existed holds none, and takes none until it leaves in-flight: a saga
      // under way is never refused for capacity.
      const inFlight = IN_FLIGHT.has(next.status) && !(IN_FLIGHT.has(node.status) && !node.slot);
      // Only taking a slot needs the limit (a waiting node that starts offboarding takes one, or an overflow row).
      const takes = inFlight && (!node.slot || (isWaiting(node.slot) && next.status === "Offboarding"));
      const limit = takes ? ((await this.pools.spec(ref.pool))?.maxInFlight ?? 1) : 0;
      let moved: { slot: string | undefined; response: TableTransactionResponse };
      try {
        const whenFull = next.status === "Offboarding" ? overflowRow(ref.nodeId) : waitingRow(this.now(), ref.nodeId);
        const move = {
          nodeId: ref.nodeId,
          held: node.slot,
          inFlight,
          limit,
          whenFull,
          at: next.updatedAt,
          currentLimit: async () => (await this.pools.spec(ref.pool))?.maxInFlight ?? 1,
        };
        moved = await this.transact(ref.pool, move, (slot) => [
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
      if (keyMoved) await this.index.releaseKey(node.keyId, ref.nodeId);
      if (action !== null)
        await this.audit.write({
          actor,
          action,
          objectType: "node",
          objectId: ref.nodeId,
          details: {
            from: node.status,
            to: next.status,
            ...(keyMoved ? { keyFrom: node.keyId, keyTo: next.keyId } : {}),
            // Objects are recorded without an audit row each (bookkeeping inside the saga): the row that ends a run
            // says which Azure and cluster objects the node holds at that point.
            // A compensation that claimed its node first ends the run Failed → Failed ("node.failed").
            ...((next.status !== node.status || action === "node.failed") && ENDS_A_RUN.has(next.status) ? { objects: next.createdObjects } : {}),
          },
        });
      return this.saw(NodeRecord.parse({ ...next, slot: moved.slot, etag: etagOf(moved.response) }));
    }
    throw new RegistryError("TooManyRetries", `node '${ref.nodeId}' is too contended; retry`);
  }

  /**
   * Whether the node may run node-side work: it holds a slot (or offboarding's overflow row). A node waiting for one
   * takes a slot that is free below the limit (raised since, or freed with no one to hand it to); a handoff needs
   * none of this. False when it still waits, or is no longer in flight (its saga is being stopped). A node that
   * `waited` records when its wait ended (`slotSince`, `at`: the saga's clock, which its deadline is measured on).
   */
  async takeSlot(ref: { pool: string; nodeId: string }, options: { waited: boolean; at: string }): Promise<boolean> {
    for (let i = 0; i < ETAG_ATTEMPTS; i++) {
      const node = await this.getInPool(ref.pool, ref.nodeId);
      // Only an onboarding goes on to node-side work: a node taken over meanwhile (offboarding) must not.
      if (!node || (node.status !== "Enrolling" && node.status !== "Onboarding")) return false;
      if (!isWaiting(node.slot)) {
        if (options.waited && node.slotSince !== options.at)
          await this.update(node, (n) => (isWaiting(n.slot) ? undefined : { slotSince: options.at }), "service:onboard", null);
        return true;
      }
      const limit = (await this.pools.spec(ref.pool))?.maxInFlight ?? 1;
      const since = options.at;
      try {
        const taken = await this.slots.promote(ref.pool, { nodeId: ref.nodeId, held: node.slot!, limit }, (slot) => [
          [
            "update",
            nodeEntity(ref.pool, ref.nodeId, { ...node, slot, slotSince: since, nodeId: undefined, pool: undefined, etag: undefined }),
            "Replace",
            { etag: node.etag },
          ],
        ]);
        if (!taken) return false;
        this.saw(NodeRecord.parse({ ...node, slot: taken.slot, slotSince: since, etag: etagOf(taken.response) }));
        return true;
      } catch (error) {
        // The node changed meanwhile (a handoff re-pointed its slot, its status moved): decide on a fresh read.
        if (error instanceof ActionRefused && error.index === 0 && error.status === 412) continue;
        throw error;
      }
    }
    throw new RegistryError("TooManyRetries", `node '${ref.nodeId}' is too contended; retry`);
  }

  /** The nodes waiting for a slot of the pool, longest-waiting first (at most `max`). */
  waiters(pool: string, max: number): Promise<string[]> {
    return this.slots.waiters(pool, max);
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
      const done = await this.slots.transact(...args);
      if (done.heir) noteHandoff({ pool: args[0], nodeId: done.heir });
      return done;
    } catch (error) {
      if (!(error instanceof ActionRefused)) throw error;
      if (error.index === 0 && error.status === 409) throw new RegistryError("NodeExists", "the node exists already");
      if (error.index === 0 && (error.status === 412 || error.status === 404)) throw new RegistryError("Conflict", "the node changed concurrently");
      if (error.status === 409) throw new RegistryError("FingerprintTaken", "another node owns this machine's fingerprint");
      throw error;
    }
  }

  /** A create that fails after binding its key (a lost race, a taken fingerprint) must not keep the key from the next try. */
  private async withKeyReleasedOnFailure<T>(node: { nodeId: string; keyId: string }, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      await this.index.releaseKey(node.keyId, node.nodeId);
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
