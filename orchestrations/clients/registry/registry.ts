/**
 * The registry: the one module that owns the service's Azure Tables.
 *
 * Layout (table names carry a per-deployment prefix):
 * - `pools`  PK "pool",  RK pool name.
 * - `tokens` PK "token", RK token id; only a SHA-256 of the secret is stored.
 * - `nodes`  PK pool name; RK `node:<id>` (the node), `fp:<kind>:<value>` (fingerprint → node id) and `$counter` (the
 *   pool's in-flight count). One partition per pool lets "create a node and take an in-flight slot" and "leave
 *   in-flight and free the slot" be single entity-group transactions: no counter can drift from the nodes it counts.
 * - `index`  PK "node" RK node id → pool; PK "key" RK key id → node. Written before the node, so a reader may find an
 *   index row for a node that is not there yet (treated as absent) but never a node it cannot find.
 * - `audit`  PK yyyymmdd, RK newest-first time + random: who did what, when, to which object.
 * - `nonces` PK key id, RK nonce: node-request nonces seen, insert-only, so a replay inside the skew window fails;
 *   also PK `result:<node>` RK `<step>:<attempt>`: step results already handed to a saga.
 * - `secrets` PK node id, RK reference: one-time secrets for nodes, sealed (AES-256-GCM) by orchestrations/clients/secrets.
 * Every read-modify-write is guarded by the entity's ETag.
 */
import { randomBytes } from "node:crypto";
import { TableClient, TableServiceClient, type TableEntityResult, type TransactionAction } from "@azure/data-tables";
import { isRestError } from "@azure/core-rest-pipeline";
import type { TokenCredential } from "@azure/core-auth";
import { IN_FLIGHT, NodeRecord, Pool, TokenRecord, type AuditEntry, type NodeStatus, type PoolSpec } from "./model.js";

export type Clock = () => Date;

export class RegistryError extends Error {
  constructor(
    readonly code: "PoolExists" | "PoolNotFound" | "TokenNotFound" | "NodeNotFound" | "NodeExists" | "Conflict" | "PoolFull" | "TooManyRetries",
    message: string,
  ) {
    super(message);
    this.name = "RegistryError";
  }
}

export interface RegistryConnection {
  /** A storage connection string (Azurite: its full string or `UseDevelopmentStorage=true`). */
  connectionString?: string;
  /** Or the table endpoint plus a credential (managed identity in Azure). */
  endpoint?: string;
  credential?: TokenCredential;
  /** Prefix of every table name; lets environments or test files share an account. */
  prefix: string;
}

type Row = Record<string, unknown> & { partitionKey: string; rowKey: string };
const TABLES = ["pools", "tokens", "nodes", "index", "audit", "nonces", "secrets"] as const;
type TableName = (typeof TABLES)[number];

const COUNTER = "$counter";
const nodeRow = (nodeId: string) => `node:${nodeId}`;
export const fingerprintRows = (fp: { machineId: string; smbiosUuid?: string }): string[] =>
  [`fp:machine-id:${fp.machineId.toLowerCase()}`, ...(fp.smbiosUuid ? [`fp:smbios-uuid:${fp.smbiosUuid.toLowerCase()}`] : [])];

/** Values stored as JSON text: Tables has no nested types. */
const JSON_FIELDS = new Set(["arc", "nodeLabels", "nodeTaints", "roleGrants", "labels", "taints", "facts", "fingerprint", "createdObjects", "lastError", "pendingClaim", "details"]);

function toRow(partitionKey: string, rowKey: string, value: Record<string, unknown>): Row {
  const row: Row = { partitionKey, rowKey };
  for (const [k, v] of Object.entries(value)) {
    if (v === undefined || k === "etag") continue;
    row[k] = JSON_FIELDS.has(k) ? JSON.stringify(v) : v;
  }
  return row;
}

function fromRow(entity: TableEntityResult<Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(entity)) {
    if (k === "partitionKey" || k === "rowKey" || k === "timestamp" || k === "etag" || k.startsWith("odata.")) continue;
    out[k] = JSON_FIELDS.has(k) && typeof v === "string" ? JSON.parse(v) : v;
  }
  out.etag = entity.etag;
  return out;
}

const status = (error: unknown): number | undefined => (isRestError(error) ? error.statusCode : undefined);
const escape = (v: string) => v.replace(/'/g, "''");

export interface SealedSecretRow {
  iv: string;
  ciphertext: string;
  tag: string;
  expiresAt: string;
}

export interface Page<T> {
  items: T[];
  continuationToken?: string;
}

export class Registry {
  private readonly tables: Record<TableName, TableClient>;
  private readonly service: TableServiceClient;

  constructor(
    connection: RegistryConnection,
    private readonly now: Clock = () => new Date(),
  ) {
    const name = (t: TableName) => `${connection.prefix}${t}`;
    if (connection.connectionString) {
      const options = { allowInsecureConnection: /UseDevelopmentStorage=true|DefaultEndpointsProtocol=http;/i.test(connection.connectionString) };
      this.service = TableServiceClient.fromConnectionString(connection.connectionString, options);
      this.tables = Object.fromEntries(TABLES.map((t) => [t, TableClient.fromConnectionString(connection.connectionString!, name(t), options)])) as Record<TableName, TableClient>;
    } else if (connection.endpoint && connection.credential) {
      this.service = new TableServiceClient(connection.endpoint, connection.credential);
      this.tables = Object.fromEntries(TABLES.map((t) => [t, new TableClient(connection.endpoint!, name(t), connection.credential!)])) as Record<TableName, TableClient>;
    } else {
      throw new Error("the registry needs a connection string, or an endpoint and a credential");
    }
  }

  /** Creates the tables if they are missing (idempotent; the SDK treats 409 as success). */
  async ensureTables(): Promise<void> {
    await Promise.all(TABLES.map((t) => this.service.createTable(this.tables[t].tableName)));
  }

  // ------------------------------------------------------------------ pools

  async createPool(name: string, spec: PoolSpec, actor: string): Promise<Pool> {
    const at = this.now().toISOString();
    try {
      await this.tables.pools.createEntity(toRow("pool", name, { ...spec, createdAt: at, updatedAt: at }));
    } catch (error) {
      if (status(error) === 409) throw new RegistryError("PoolExists", `pool '${name}' already exists`);
      throw error;
    }
    await this.ensureCounter(name);
    await this.audit({ actor, action: "pool.create", objectType: "pool", objectId: name, details: { spec } });
    return (await this.getPool(name))!;
  }

  async getPool(name: string): Promise<Pool | undefined> {
    const entity = await this.read(this.tables.pools, "pool", name);
    if (!entity) return undefined;
    const counter = await this.read(this.tables.nodes, name, COUNTER);
    return Pool.parse({ ...fromRow(entity), name, inFlight: (counter?.inFlight as number | undefined) ?? 0 });
  }

  async listPools(options: { maxPageSize?: number; continuationToken?: string } = {}): Promise<Page<Pool>> {
    const page = await this.page(this.tables.pools, "PartitionKey eq 'pool'", options);
    const items = await Promise.all(page.items.map((e) => this.getPool(e.rowKey as string)));
    return { items: items.filter((p): p is Pool => p !== undefined), continuationToken: page.continuationToken };
  }

  /** Replaces a pool's spec; with `ifMatch`, only if nobody changed it since that ETag. */
  async updatePool(name: string, spec: PoolSpec, actor: string, ifMatch?: string): Promise<Pool> {
    const current = await this.read(this.tables.pools, "pool", name);
    if (!current) throw new RegistryError("PoolNotFound", `pool '${name}' does not exist`);
    try {
      await this.tables.pools.updateEntity(toRow("pool", name, { ...spec, createdAt: current.createdAt, updatedAt: this.now().toISOString() }), "Replace", { etag: ifMatch ?? current.etag });
    } catch (error) {
      if (status(error) === 412) throw new RegistryError("Conflict", `pool '${name}' was changed by someone else; read it again`);
      throw error;
    }
    await this.audit({ actor, action: "pool.update", objectType: "pool", objectId: name, details: { spec } });
    return (await this.getPool(name))!;
  }

  // ------------------------------------------------------------------ tokens

  async createToken(record: Omit<TokenRecord, "etag" | "uses" | "createdAt">, actor: string): Promise<TokenRecord> {
    const createdAt = this.now().toISOString();
    await this.tables.tokens.createEntity(toRow("token", record.tokenId, { ...record, uses: 0, createdAt }));
    await this.audit({ actor, action: "token.create", objectType: "token", objectId: record.tokenId, details: { pool: record.pool, maxUses: record.maxUses, expiresAt: record.expiresAt } });
    return (await this.getToken(record.tokenId))!;
  }

  async getToken(tokenId: string): Promise<TokenRecord | undefined> {
    const entity = await this.read(this.tables.tokens, "token", tokenId);
    return entity ? TokenRecord.parse({ ...fromRow(entity), tokenId }) : undefined;
  }

  async listTokens(options: { pool?: string; maxPageSize?: number; continuationToken?: string } = {}): Promise<Page<TokenRecord>> {
    const filter = `PartitionKey eq 'token'${options.pool ? ` and pool eq '${escape(options.pool)}'` : ""}`;
    const page = await this.page(this.tables.tokens, filter, options);
    return { items: page.items.map((e) => TokenRecord.parse({ ...fromRow(e), tokenId: e.rowKey })), continuationToken: page.continuationToken };
  }

  /** Marks a token whose expiry has passed (the sweeper); false when it was marked, revoked or not yet expired. */
  async expireToken(tokenId: string, actor: string): Promise<boolean> {
    let changed = false;
    await this.mutateToken(tokenId, (t) => {
      changed = !t.expiredAt && !t.revokedAt && Date.parse(t.expiresAt) <= this.now().getTime();
      return changed ? { expiredAt: this.now().toISOString() } : undefined;
    });
    if (changed) await this.audit({ actor, action: "token.expire", objectType: "token", objectId: tokenId });
    return changed;
  }

  async revokeToken(tokenId: string, actor: string): Promise<TokenRecord> {
    const token = await this.mutateToken(tokenId, (t) => (t.revokedAt ? undefined : { revokedAt: this.now().toISOString() }));
    await this.audit({ actor, action: "token.revoke", objectType: "token", objectId: tokenId });
    return token;
  }

  /**
   * Read-validate-write under the token's ETag, retried on 412, so concurrent redemptions serialise: with a
   * single-use token exactly one caller sees `uses` go from 0 to 1. `check` throws to refuse; `change` returns the
   * fields to write, or undefined for "nothing to do".
   */
  async mutateToken(tokenId: string, change: (t: TokenRecord) => Partial<TokenRecord> | undefined, options: { attempts?: number } = {}): Promise<TokenRecord> {
    const attempts = options.attempts ?? 64;
    for (let i = 0; i < attempts; i++) {
      const token = await this.getToken(tokenId);
      if (!token) throw new RegistryError("TokenNotFound", `token '${tokenId}' does not exist`);
      const patch = change(token);
      if (!patch) return token;
      try {
        await this.tables.tokens.updateEntity(toRow("token", tokenId, patch), "Merge", { etag: token.etag });
        return (await this.getToken(tokenId))!;
      } catch (error) {
        if (status(error) !== 412) throw error;
        await backoff(i);
      }
    }
    throw new RegistryError("TooManyRetries", `token '${tokenId}' is too contended; retry`);
  }

  // ------------------------------------------------------------------ nodes

  async getNode(nodeId: string): Promise<NodeRecord | undefined> {
    const index = await this.read(this.tables.index, "node", nodeId);
    if (!index) return undefined;
    return this.getNodeInPool(index.pool as string, nodeId);
  }

  async getNodeInPool(pool: string, nodeId: string): Promise<NodeRecord | undefined> {
    const entity = await this.read(this.tables.nodes, pool, nodeRow(nodeId));
    return entity ? NodeRecord.parse({ ...fromRow(entity), nodeId, pool }) : undefined;
  }

  async getNodeByKey(keyId: string): Promise<NodeRecord | undefined> {
    const index = await this.read(this.tables.index, "key", keyId);
    if (!index) return undefined;
    const node = await this.getNodeInPool(index.pool as string, index.nodeId as string);
    return node && node.keyId === keyId ? node : undefined;
  }

  /** Node ids that own a fingerprint of this machine in the pool. */
  async nodesWithFingerprint(pool: string, fp: { machineId: string; smbiosUuid?: string }): Promise<string[]> {
    const owners = await Promise.all(fingerprintRows(fp).map((rk) => this.read(this.tables.nodes, pool, rk)));
    return [...new Set(owners.filter((o) => o !== undefined).map((o) => o.nodeId as string))];
  }

  async listNodes(options: { pool?: string; status?: NodeStatus; maxPageSize?: number; continuationToken?: string } = {}): Promise<Page<NodeRecord>> {
    const clauses = [`RowKey ge 'node:' and RowKey lt 'node;'`];
    if (options.pool) clauses.unshift(`PartitionKey eq '${escape(options.pool)}'`);
    if (options.status) clauses.push(`status eq '${escape(options.status)}'`);
    const page = await this.page(this.tables.nodes, clauses.join(" and "), options);
    return {
      items: page.items.map((e) => NodeRecord.parse({ ...fromRow(e), pool: e.partitionKey, nodeId: (e.rowKey as string).slice("node:".length) })),
      continuationToken: page.continuationToken,
    };
  }

  /**
   * Creates a node, its fingerprint rows and, if it starts in flight, takes one of the pool's slots: one transaction.
   * Refused with PoolFull when the pool has no slot, NodeExists when the node is there already.
   */
  async createNode(node: Omit<NodeRecord, "etag" | "createdAt" | "updatedAt">, actor: string, options: { claimFingerprint?: boolean } = {}): Promise<NodeRecord> {
    const pool = await this.getPool(node.pool);
    if (!pool) throw new RegistryError("PoolNotFound", `pool '${node.pool}' does not exist`);
    // Checked first so a duplicate is reported as such even in a full pool; the transaction's 409 covers races.
    if (await this.read(this.tables.nodes, node.pool, nodeRow(node.nodeId))) throw new RegistryError("NodeExists", `node '${node.nodeId}' exists already`);
    await this.index(node);
    const at = this.now().toISOString();
    await this.withCounter(node.pool, pool.maxInFlight, IN_FLIGHT.has(node.status) ? 1 : 0, () => [
      ["create", toRow(node.pool, nodeRow(node.nodeId), { ...node, createdAt: at, updatedAt: at })],
      // A quarantined clone leaves the fingerprint with the node that had it until an admin decides.
      ...(options.claimFingerprint === false ? [] : fingerprintRows(node.fingerprint)).map((rk): TransactionAction => ["upsert", { partitionKey: node.pool, rowKey: rk, nodeId: node.nodeId }, "Replace"]),
    ]);
    await this.audit({ actor, action: "node.enrol", objectType: "node", objectId: node.nodeId, details: { pool: node.pool, status: node.status, tokenId: node.tokenId, keyId: node.keyId } });
    return (await this.getNodeInPool(node.pool, node.nodeId))!;
  }

  /**
   * Changes a node under its ETag; moving into or out of an in-flight status takes or frees the pool slot in the same
   * transaction. `expect` lists the statuses the change is valid from (Conflict otherwise).
   */
  async updateNode(
    ref: { pool: string; nodeId: string },
    change: (node: NodeRecord) => Partial<Omit<NodeRecord, "nodeId" | "pool" | "etag" | "createdAt">> | undefined,
    actor: string,
    action: string,
    options: { expect?: NodeStatus[] } = {},
  ): Promise<NodeRecord> {
    for (let i = 0; i < 64; i++) {
      const node = await this.getNodeInPool(ref.pool, ref.nodeId);
      if (!node) throw new RegistryError("NodeNotFound", `node '${ref.nodeId}' does not exist`);
      if (options.expect && !options.expect.includes(node.status)) throw new RegistryError("Conflict", `node '${ref.nodeId}' is ${node.status}, not ${options.expect.join(" or ")}`);
      const patch = change(node);
      if (!patch) return node;
      const next = { ...node, ...patch, updatedAt: this.now().toISOString() };
      if (next.keyId !== node.keyId) await this.index(next);
      const delta = (IN_FLIGHT.has(next.status) ? 1 : 0) - (IN_FLIGHT.has(node.status) ? 1 : 0);
      const pool = await this.getPool(ref.pool);
      // Offboarding frees resources: it takes a slot (it is saga work) but is never refused for a full pool.
      const limit = next.status === "Offboarding" ? Number.MAX_SAFE_INTEGER : (pool?.maxInFlight ?? Number.MAX_SAFE_INTEGER);
      try {
        await this.withCounter(ref.pool, limit, delta, () => [
          ["update", toRow(ref.pool, nodeRow(ref.nodeId), { ...next, nodeId: undefined, pool: undefined }), "Replace", { etag: node.etag }],
          ...(next.fingerprint !== node.fingerprint
            ? fingerprintRows(next.fingerprint).map((rk): TransactionAction => ["upsert", { partitionKey: ref.pool, rowKey: rk, nodeId: ref.nodeId }, "Replace"])
            : []),
        ]);
      } catch (error) {
        if (error instanceof RegistryError && error.code === "Conflict") {
          await backoff(i);
          continue;
        }
        throw error;
      }
      await this.audit({ actor, action, objectType: "node", objectId: ref.nodeId, details: { from: node.status, to: next.status } });
      return (await this.getNodeInPool(ref.pool, ref.nodeId))!;
    }
    throw new RegistryError("TooManyRetries", `node '${ref.nodeId}' is too contended; retry`);
  }

  // ------------------------------------------------------------------ node-request nonces

  /** Records a signed request's nonce; false when this key used it before (a replay). Atomic: an insert. */
  claimNonce(entry: { keyId: string; nonce: string; expiresAt: Date }): Promise<boolean> {
    return this.claimOnce(entry.keyId, entry.nonce, { expiresAt: entry.expiresAt });
  }

  /** Records that (partition, key) was handled; false if it had been already. For at-least-once consumers. */
  async claimOnce(partition: string, key: string, fields: Record<string, unknown> = {}): Promise<boolean> {
    try {
      await this.tables.nonces.createEntity({ partitionKey: partition, rowKey: key, at: this.now(), ...fields });
      return true;
    } catch (error) {
      if (status(error) === 409) return false;
      throw error;
    }
  }

  /**
   * Deletes nonces past their expiry (a replay of them fails the signature's time check anyway) and claims older than
   * `claimsBefore` (at-least-once redeliveries come within minutes, not days). Returns how many rows went.
   */
  async purgeClaims(claimsBefore: Date): Promise<number> {
    const filter = `expiresAt lt datetime'${this.now().toISOString()}' or at lt datetime'${claimsBefore.toISOString()}'`;
    let purged = 0;
    for await (const e of this.tables.nonces.listEntities({ queryOptions: { filter, select: ["PartitionKey", "RowKey"] } })) {
      try {
        await this.tables.nonces.deleteEntity(e.partitionKey!, e.rowKey!);
        purged++;
      } catch (error) {
        if (status(error) !== 404) throw error;
      }
    }
    return purged;
  }

  async releaseClaim(partition: string, key: string): Promise<void> {
    try {
      await this.tables.nonces.deleteEntity(partition, key);
    } catch (error) {
      if (status(error) !== 404) throw error;
    }
  }

  // ------------------------------------------------------------------ sealed one-time secrets

  /** Stores a sealed secret; false if one is stored under (node, ref) already (insert-only). */
  async putSealedSecret(nodeId: string, ref: string, sealed: SealedSecretRow): Promise<boolean> {
    try {
      await this.tables.secrets.createEntity({ partitionKey: nodeId, rowKey: ref, ...sealed });
      return true;
    } catch (error) {
      if (status(error) === 409) return false;
      throw error;
    }
  }

  async getSealedSecret(nodeId: string, ref: string): Promise<SealedSecretRow | undefined> {
    const e = await this.read(this.tables.secrets, nodeId, ref);
    return e ? { iv: e.iv as string, ciphertext: e.ciphertext as string, tag: e.tag as string, expiresAt: e.expiresAt as string } : undefined;
  }

  /** Reads and deletes under the row's ETag: of two concurrent takers, exactly one gets the secret. */
  async takeSealedSecret(nodeId: string, ref: string): Promise<SealedSecretRow | undefined> {
    const e = await this.read(this.tables.secrets, nodeId, ref);
    if (!e) return undefined;
    try {
      await this.tables.secrets.deleteEntity(nodeId, ref, { etag: e.etag });
    } catch (error) {
      if (status(error) === 404 || status(error) === 412) return undefined;
      throw error;
    }
    return { iv: e.iv as string, ciphertext: e.ciphertext as string, tag: e.tag as string, expiresAt: e.expiresAt as string };
  }

  async deleteSealedSecret(nodeId: string, ref: string): Promise<boolean> {
    try {
      await this.tables.secrets.deleteEntity(nodeId, ref);
      return true;
    } catch (error) {
      if (status(error) === 404) return false;
      throw error;
    }
  }

  // ------------------------------------------------------------------ audit

  async audit(entry: Omit<AuditEntry, "at">): Promise<void> {
    const at = this.now();
    const day = at.toISOString().slice(0, 10).replace(/-/g, "");
    // Newest first within a day: RowKey sorts ascending, so store the time inverted.
    const rowKey = `${String(8_640_000_000_000_000 - at.getTime()).padStart(16, "0")}-${randomBytes(4).toString("hex")}`;
    await this.tables.audit.createEntity(toRow(day, rowKey, { ...entry, at: at.toISOString() }));
  }

  async listAudit(options: { day?: Date; objectId?: string } = {}): Promise<AuditEntry[]> {
    const day = (options.day ?? this.now()).toISOString().slice(0, 10).replace(/-/g, "");
    const filter = `PartitionKey eq '${day}'${options.objectId ? ` and objectId eq '${escape(options.objectId)}'` : ""}`;
    const out: AuditEntry[] = [];
    for await (const e of this.tables.audit.listEntities({ queryOptions: { filter } })) out.push(fromRow(e as TableEntityResult<Record<string, unknown>>) as AuditEntry);
    return out;
  }

  // ------------------------------------------------------------------ internals

  private async index(node: { nodeId: string; pool: string; keyId: string }): Promise<void> {
    await Promise.all([
      this.tables.index.upsertEntity({ partitionKey: "node", rowKey: node.nodeId, pool: node.pool }, "Replace"),
      this.tables.index.upsertEntity({ partitionKey: "key", rowKey: node.keyId, pool: node.pool, nodeId: node.nodeId }, "Replace"),
    ]);
  }

  private async ensureCounter(pool: string): Promise<void> {
    try {
      await this.tables.nodes.createEntity({ partitionKey: pool, rowKey: COUNTER, inFlight: 0 });
    } catch (error) {
      if (status(error) !== 409) throw error;
    }
  }

  /** Runs `actions` in one transaction with the pool counter moved by `delta` under its ETag. */
  private async withCounter(pool: string, limit: number, delta: number, actions: () => TransactionAction[]): Promise<void> {
    await this.ensureCounter(pool);
    for (let i = 0; i < 64; i++) {
      const counter = (await this.read(this.tables.nodes, pool, COUNTER))!;
      const inFlight = counter.inFlight as number;
      if (delta > 0 && inFlight + delta > limit) throw new RegistryError("PoolFull", `pool '${pool}' has ${inFlight} of ${limit} onboarding slots in use`);
      const batch = actions();
      if (delta !== 0) batch.push(["update", { partitionKey: pool, rowKey: COUNTER, inFlight: Math.max(0, inFlight + delta) }, "Replace", { etag: counter.etag }]);
      try {
        await this.tables.nodes.submitTransaction(batch);
        return;
      } catch (error) {
        const code = status(error);
        // The service names the failed action by index at the start of the message ("0:The specified entity…");
        // the node create/update is action 0, the counter the last one.
        const failedIndex = isRestError(error) ? Number(/^(\d+):/.exec(error.message)?.[1]) : undefined;
        if (code === 409 && failedIndex === 0) throw new RegistryError("NodeExists", "the node exists already");
        if (code === 412 && failedIndex === 0) throw new RegistryError("Conflict", "the node changed concurrently");
        if (code === 412) {
          await backoff(i);
          continue;
        }
        throw error;
      }
    }
    throw new RegistryError("TooManyRetries", `pool '${pool}' is too contended; retry`);
  }

  private async read(table: TableClient, partitionKey: string, rowKey: string): Promise<TableEntityResult<Record<string, unknown>> | undefined> {
    try {
      return await table.getEntity<Record<string, unknown>>(partitionKey, rowKey);
    } catch (error) {
      if (status(error) === 404) return undefined;
      throw error;
    }
  }

  private async page(table: TableClient, filter: string, options: { maxPageSize?: number; continuationToken?: string }): Promise<Page<TableEntityResult<Record<string, unknown>>>> {
    const pages = table.listEntities<Record<string, unknown>>({ queryOptions: { filter } }).byPage({ maxPageSize: options.maxPageSize ?? 100, continuationToken: options.continuationToken });
    const next = await pages.next();
    if (next.done) return { items: [] };
    return { items: [...next.value], continuationToken: next.value.continuationToken };
  }
}

/** Small randomised back-off between optimistic-concurrency retries, so contenders spread out. */
function backoff(attempt: number): Promise<void> {
  const ms = Math.min(50, 2 ** Math.min(attempt, 5)) * Math.random();
  return new Promise((resolve) => setTimeout(resolve, ms));
}
