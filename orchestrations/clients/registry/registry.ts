/**
 * The registry: the one module that owns the service's Azure Tables, one table object per table, built from one
 * connection. Table names carry a per-deployment prefix. Layouts and invariants are in each module's header:
 * - `pools`   pools.ts      PoolTable      pool specs (the in-flight count joined from `nodes`)
 * - `nodes`   nodes.ts      NodeTable      nodes and fingerprints per pool partition, with the pool's in-flight
 *   `index`                                slots (in-flight.ts) and the node/key index it writes first (node-index.ts)
 * - `index`   tokens.ts     TokenTable     enrolment tokens (a hash of the secret only), in the index's partition;
 *   `tokens`                               tokens made before they moved there, still read
 * - `audit`   audit.ts      AuditLog       who did what, when, to which object; written by every mutation above
 * - `nonces`  nonces.ts     NonceTable     node-request nonces, insert-only
 * - `claims`  claims.ts     ResultClaims   step results already handed to a saga, insert-only; and
 *             rejection-quota.ts RejectionQuota  per-node counts of recorded rejected results, per window
 * - `secrets` secrets.ts    SecretTable    sealed one-time secrets for nodes
 * Shared row mapping, reads and retries: table-rows.ts. Every read-modify-write is guarded by the entity's ETag.
 * Tables depend on each other only through the objects passed to their constructors (nodes → pools → slots, and
 * the audit log), never through each other's rows.
 */
import { TableClient, TableServiceClient } from "@azure/data-tables";
import type { TokenCredential } from "@azure/core-auth";
import type { HttpClient } from "@azure/core-rest-pipeline";
import { AuditLog } from "./audit.js";
import { ResultClaims } from "./claims.js";
import { InFlightSlots } from "./in-flight.js";
import { NodeTable } from "./nodes.js";
import { NonceTable } from "./nonces.js";
import { PoolTable } from "./pools.js";
import { RejectionQuota } from "./rejection-quota.js";
import { SecretTable } from "./secrets.js";
import type { Clock } from "./table-rows.js";
import { TokenTable } from "./tokens.js";

export { RegistryError, type Clock, type Page } from "./table-rows.js";
export { fingerprintRows, type NodeChange } from "./nodes.js";
export { KeyAlreadyBound } from "./node-index.js";
export type { SealedSecretRow } from "./secrets.js";
export type { AuditLog, NodeTable, NonceTable, PoolTable, RejectionQuota, ResultClaims, SecretTable, TokenTable };

export interface RegistryConnection {
  /** A storage connection string (Azurite: its full string or `UseDevelopmentStorage=true`). */
  connectionString?: string;
  /** Or the table endpoint plus a credential (managed identity in Azure). */
  endpoint?: string;
  credential?: TokenCredential;
  /** Prefix of every table name; lets environments or test files share an account. */
  prefix: string;
  /** The transport under every table client; default: HTTP. Benchmarks pass Azurite's handler in process. */
  httpClient?: HttpClient;
}

const TABLES = ["pools", "tokens", "nodes", "index", "audit", "nonces", "claims", "secrets"] as const;
type TableName = (typeof TABLES)[number];

export class Registry {
  readonly pools: PoolTable;
  readonly tokens: TokenTable;
  readonly nodes: NodeTable;
  readonly audit: AuditLog;
  readonly nonces: NonceTable;
  readonly claims: ResultClaims;
  readonly rejections: RejectionQuota;
  readonly secrets: SecretTable;
  private readonly service: TableServiceClient;
  private readonly tables: Record<TableName, TableClient>;
  private readonly now: Clock;

  constructor(connection: RegistryConnection, now: Clock = () => new Date()) {
    this.now = now;
    const name = (t: TableName) => `${connection.prefix}${t}`;
    if (connection.connectionString) {
      const options = {
        allowInsecureConnection: /UseDevelopmentStorage=true|DefaultEndpointsProtocol=http;/i.test(connection.connectionString),
        ...(connection.httpClient ? { httpClient: connection.httpClient } : {}),
      };
      this.service = TableServiceClient.fromConnectionString(connection.connectionString, options);
      this.tables = Object.fromEntries(TABLES.map((t) => [t, TableClient.fromConnectionString(connection.connectionString!, name(t), options)])) as Record<
        TableName,
        TableClient
      >;
    } else if (connection.endpoint && connection.credential) {
      this.service = new TableServiceClient(connection.endpoint, connection.credential);
      this.tables = Object.fromEntries(TABLES.map((t) => [t, new TableClient(connection.endpoint!, name(t), connection.credential!)])) as Record<
        TableName,
        TableClient
      >;
    } else {
      throw new Error("the registry needs a connection string, or an endpoint and a credential");
    }
    const counter = new InFlightSlots(this.tables.nodes);
    this.audit = new AuditLog(this.tables.audit, now);
    this.pools = new PoolTable(this.tables.pools, counter, this.audit, now);
    this.tokens = new TokenTable(this.tables.index, this.tables.tokens, this.audit, now);
    this.nodes = new NodeTable(this.tables.nodes, this.tables.index, counter, this.pools, this.audit, now);
    this.nonces = new NonceTable(this.tables.nonces, now);
    this.claims = new ResultClaims(this.tables.claims, now);
    this.rejections = new RejectionQuota(this.tables.claims, now);
    this.secrets = new SecretTable(this.tables.secrets);
  }

  /** Creates the tables if they are missing (idempotent; the SDK treats 409 as success). */
  async ensureTables(): Promise<void> {
    await Promise.all(TABLES.map((t) => this.service.createTable(this.tables[t].tableName)));
  }

  /**
   * The sweeper's housekeeping: deletes nonces (node requests' and enrolments') past their expiry and result claims (and anything else in `nonces`)
   * recorded before `claimsBefore`. Returns how many rows went.
   */
  async purgeExpired(claimsBefore: Date): Promise<number> {
    return (await this.nonces.purge(claimsBefore)) + (await this.nodes.purgeNonces(this.now())) + (await this.claims.purge(claimsBefore));
  }
}
