/**
 * Plumbing every registry table shares: the row mapping (Tables has no nested types, so structured fields travel as
 * JSON text), point reads and pages that answer "absent" instead of throwing, insert-only writes, deletes that
 * tolerate "already gone", and the back-off of optimistic-concurrency (ETag) retries. No table's layout lives here.
 */
import type { TableClient, TableEntityResult } from "@azure/data-tables";
import { isRestError } from "@azure/core-rest-pipeline";

export type Clock = () => Date;

export class RegistryError extends Error {
  constructor(
    readonly code:
      | "PoolExists"
      | "PoolNotFound"
      | "TokenNotFound"
      | "NodeNotFound"
      | "NodeExists"
      | "KeyInUse"
      | "FingerprintTaken"
      | "NonceUsed"
      | "Conflict"
      | "TooManyRetries",
    message: string,
  ) {
    super(message);
    this.name = "RegistryError";
  }
}

export interface Page<T> {
  items: T[];
  continuationToken?: string;
}

export type Row = Record<string, unknown> & { partitionKey: string; rowKey: string };
export type Entity = TableEntityResult<Record<string, unknown>>;

/** Values stored as JSON text: Tables has no nested types. */
const JSON_FIELDS = new Set([
  "arc",
  "nodeLabels",
  "nodeTaints",
  "roleGrants",
  "labels",
  "taints",
  "facts",
  "fingerprint",
  "createdObjects",
  "lastError",
  "pendingClaim",
  "details",
]);

export function toRow(partitionKey: string, rowKey: string, value: Record<string, unknown>): Row {
  const row: Row = { partitionKey, rowKey };
  for (const [k, v] of Object.entries(value)) {
    if (v === undefined || k === "etag") continue;
    row[k] = JSON_FIELDS.has(k) ? JSON.stringify(v) : v;
  }
  return row;
}

export function fromRow(entity: Entity): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(entity)) {
    if (k === "partitionKey" || k === "rowKey" || k === "timestamp" || k === "etag" || k.startsWith("odata.")) continue;
    out[k] = JSON_FIELDS.has(k) && typeof v === "string" ? JSON.parse(v) : v;
  }
  out.etag = entity.etag;
  return out;
}

/**
 * The longest string one property may hold: 64 KiB of UTF-16, 32,768 code units (JavaScript's `length`). Azure and
 * Azurite refuse a longer one (400 PropertyValueTooLarge), and in an entity-group transaction with every other row.
 */
export const MAX_STRING_CHARS = 32 * 1024;

/** The properties of a row holding a string over MAX_STRING_CHARS, with their lengths. */
export function oversizedProperties(row: Row): { name: string; chars: number }[] {
  return Object.entries(row)
    .filter(([, v]) => typeof v === "string" && v.length > MAX_STRING_CHARS)
    .map(([name, v]) => ({ name, chars: (v as string).length }));
}

/** The HTTP status of a failed Tables call, if it was one. */
export const status = (error: unknown): number | undefined => (isRestError(error) ? error.statusCode : undefined);
/** Quotes a value for an OData filter literal. */
export const escape = (v: string): string => v.replace(/'/g, "''");

export async function read(table: TableClient, partitionKey: string, rowKey: string): Promise<Entity | undefined> {
  try {
    return await table.getEntity<Record<string, unknown>>(partitionKey, rowKey);
  } catch (error) {
    if (status(error) === 404) return undefined;
    throw error;
  }
}

export async function page(table: TableClient, filter: string, options: { maxPageSize?: number; continuationToken?: string }): Promise<Page<Entity>> {
  const pages = table
    .listEntities<Record<string, unknown>>({ queryOptions: { filter } })
    .byPage({ maxPageSize: options.maxPageSize ?? 100, continuationToken: options.continuationToken });
  const next = await pages.next();
  if (next.done) return { items: [] };
  return { items: [...next.value], continuationToken: next.value.continuationToken };
}

/** Inserts a row; false when (PK, RK) exists already. Atomic: the service refuses the second insert. */
export async function insertOnce(table: TableClient, row: Row): Promise<boolean> {
  try {
    await table.createEntity(row);
    return true;
  } catch (error) {
    if (status(error) === 409) return false;
    throw error;
  }
}

/** Deletes a row; false when it was not there. */
export async function deleteIfPresent(table: TableClient, partitionKey: string, rowKey: string): Promise<boolean> {
  try {
    await table.deleteEntity(partitionKey, rowKey);
    return true;
  } catch (error) {
    if (status(error) === 404) return false;
    throw error;
  }
}

/** Deletes every row matching `filter`, one by one (rows deleted meanwhile are skipped); returns how many went. */
export async function purgeWhere(table: TableClient, filter: string): Promise<number> {
  let purged = 0;
  for await (const e of table.listEntities({ queryOptions: { filter, select: ["PartitionKey", "RowKey"] } })) {
    if (await deleteIfPresent(table, e.partitionKey!, e.rowKey!)) purged++;
  }
  return purged;
}

/** Attempts per read-modify-write before giving up with TooManyRetries. */
export const ETAG_ATTEMPTS = 64;

/** Small randomised back-off between optimistic-concurrency retries, so contenders spread out. */
export function backoff(attempt: number): Promise<void> {
  // Full jitter over a window that doubles up to 250 ms: 32 writers on one row (a token shared by a fleet) all get through.
  const ms = Math.min(250, 2 ** Math.min(attempt, 8)) * Math.random();
  return new Promise((resolve) => setTimeout(resolve, ms));
}
