/**
 * The tables and their rows, and the operations the Table service offers on them, with its preconditions: insert
 * refuses an existing row (409 EntityAlreadyExists), an update or delete with If-Match refuses a missing row (404
 * ResourceNotFound) or another ETag (412 UpdateConditionNotSatisfied), an update without If-Match is an upsert. Every
 * write gives the row a new ETag and Timestamp. Everything here is synchronous, so an operation (and a batch, see
 * batch.ts) is atomic with respect to every other request of the process.
 */
import { randomUUID } from "node:crypto";
import { parseFilter, rowKeyRange, FilterError } from "./filter.js";
import { BadEntity, MAX_ENTITY_BYTES, entityJson, entitySize, propertiesOf, type Properties, type Typed } from "./values.js";

export class TableError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** The service ends every error message with the request's id and time. */
export const withRequestId = (message: string) => `${message}\nRequestId:${randomUUID()}\nTime:${new Date().toISOString()}`;

export interface Row {
  partitionKey: string;
  rowKey: string;
  timestamp: string;
  etag: string;
  properties: Properties;
}

/** A map whose keys are also kept in order, so a query reads rows (or partitions) in key order without sorting. */
class OrderedMap<V> {
  private readonly map = new Map<string, V>();
  readonly keys: string[] = [];

  get size(): number {
    return this.map.size;
  }

  get(key: string): V | undefined {
    return this.map.get(key);
  }

  has(key: string): boolean {
    return this.map.has(key);
  }

  set(key: string, value: V): void {
    if (!this.map.has(key)) this.keys.splice(lowerBound(this.keys, key), 0, key);
    this.map.set(key, value);
  }

  delete(key: string): void {
    if (this.map.delete(key)) this.keys.splice(lowerBound(this.keys, key), 1);
  }
}

/** A partition's rows by row key. */
type Partition = OrderedMap<Row>;

class Table {
  readonly partitions = new OrderedMap<Partition>();
}

/** A row as it was before a write of a transaction (undefined: absent), to put back if the transaction fails. */
interface Undo {
  partition: Partition;
  rk: string;
  row: Row | undefined;
}

const TABLE_NAME = /^[A-Za-z][A-Za-z0-9]{2,62}$/;
// Characters the service refuses in PartitionKey and RowKey (and control characters).
const BAD_KEY = /[/\\#?\u0000-\u001f\u007f-\u009f]/;
export const MAX_PAGE = 1000;

export class TableStore {
  private readonly tables = new Map<string, Table>();
  /** Set while a transaction runs: what to undo if it fails. */
  private undo: Undo[] | undefined;
  private ticks = 0n;
  private readonly epoch = BigInt(Date.now()) * 10_000n;

  createTable(name: string): void {
    if (!TABLE_NAME.test(name)) throw new TableError(400, "InvalidResourceName", "The specifed resource name contains invalid characters.");
    if (this.tables.has(name.toLowerCase())) throw new TableError(409, "TableAlreadyExists", "The table specified already exists.");
    this.tables.set(name.toLowerCase(), new Table());
  }

  deleteTable(name: string): void {
    if (!this.tables.delete(name.toLowerCase())) throw notFound("TableNotFound", "The table specified does not exist.");
  }

  get(table: string, pk: string, rk: string): Row {
    // Point requests are held to the key rules too: Azure refuses a key it could never have stored (400).
    checkKeys(pk, rk);
    const row = this.table(table).partitions.get(pk)?.get(rk);
    if (!row) throw notFound("ResourceNotFound", "The specified resource does not exist.");
    return row;
  }

  insert(table: string, pk: string, rk: string, body: Record<string, unknown>): Row {
    const partition = this.partition(table, pk, true)!;
    checkKeys(pk, rk);
    if (partition.has(rk)) throw new TableError(409, "EntityAlreadyExists", "The specified entity already exists.");
    const properties = props(body);
    checkEntitySize(pk, rk, properties);
    return this.write(partition, pk, rk, properties);
  }

  /** PUT (merge false) or MERGE/PATCH (merge true); `ifMatch` undefined is an upsert. */
  update(table: string, pk: string, rk: string, body: Record<string, unknown>, merge: boolean, ifMatch: string | undefined): Row {
    const partition = this.partition(table, pk, true)!;
    checkKeys(pk, rk);
    const current = partition.get(rk);
    if (ifMatch !== undefined) precondition(current, ifMatch);
    const properties = props(body);
    if (merge && current) for (const [k, v] of current.properties) if (!properties.has(k)) properties.set(k, v);
    checkEntitySize(pk, rk, properties);
    return this.write(partition, pk, rk, properties);
  }

  delete(table: string, pk: string, rk: string, ifMatch: string): void {
    checkKeys(pk, rk);
    const partition = this.partition(table, pk, false);
    const row = partition?.get(rk);
    precondition(row, ifMatch);
    this.undo?.push({ partition: partition!, rk, row });
    partition!.delete(rk);
    if (partition!.size === 0) this.table(table).partitions.delete(pk);
  }

  /** One page of a query, in PartitionKey then RowKey order, resuming at `from`. */
  query(
    table: string,
    options: { filter?: string; select?: string[]; top?: number; from?: { pk: string; rk: string } },
  ): {
    rows: Record<string, unknown>[];
    next?: { pk: string; rk: string };
  } {
    const t = this.table(table);
    let predicate: ReturnType<typeof parseFilter> | undefined;
    try {
      predicate = options.filter ? parseFilter(options.filter) : undefined;
    } catch (error) {
      if (error instanceof FilterError) throw new TableError(400, "InvalidInput", `One of the request inputs is not valid. ${error.message}`);
      throw error;
    }
    const top = Math.min(options.top ?? MAX_PAGE, MAX_PAGE);
    const only = options.filter ? fixedPartition(options.filter) : undefined;
    const from = options.from;
    // Where the filter's RowKey bounds put the matching rows of a partition (every row there is still tested).
    const range = options.filter ? rowKeyRange(options.filter) : {};
    const pks = only !== undefined ? (t.partitions.has(only) ? [only] : []) : t.partitions.keys.slice(from ? lowerBound(t.partitions.keys, from.pk) : 0);
    const rows: Record<string, unknown>[] = [];
    for (const pk of pks) {
      if (from && pk < from.pk) continue;
      const partition = t.partitions.get(pk)!;
      const keys = partition.keys;
      let start = range.from !== undefined ? lowerBound(keys, range.from) : 0;
      if (from && pk === from.pk) start = Math.max(start, lowerBound(keys, from.rk));
      const end = range.to !== undefined ? upperBound(keys, range.to) : keys.length;
      for (let i = start; i < end; i++) {
        const rk = keys[i]!;
        const row = partition.get(rk)!;
        if (predicate && !predicate((name) => property(row, name))) continue;
        if (rows.length === top) return { rows, next: { pk, rk } };
        rows.push(entityJson(row, options.select));
      }
    }
    return { rows };
  }

  /** Runs `work` on the partition and puts it back as it was if `work` throws (entity-group transactions). */
  atomically<T>(table: string, pk: string, work: () => T): T {
    const t = this.table(table);
    const before = t.partitions.get(pk);
    const undo: Undo[] = [];
    this.undo = undo;
    try {
      return work();
    } catch (error) {
      for (let i = undo.length - 1; i >= 0; i--) {
        const { partition, rk, row } = undo[i]!;
        if (row) partition.set(rk, row);
        else partition.delete(rk);
      }
      if (before) t.partitions.set(pk, before);
      else t.partitions.delete(pk);
      throw error;
    } finally {
      this.undo = undefined;
    }
  }

  private write(partition: Partition, pk: string, rk: string, properties: Properties): Row {
    // 100 ns ticks, as the service's Timestamp; strictly increasing so no two writes share an ETag.
    const ticks = this.epoch + ++this.ticks;
    const ms = Number(ticks / 10_000n);
    const timestamp = `${new Date(ms).toISOString().slice(0, 19)}.${(ticks % 10_000_000n).toString().padStart(7, "0")}Z`;
    const row: Row = { partitionKey: pk, rowKey: rk, timestamp, etag: `W/"datetime'${encodeURIComponent(timestamp)}'"`, properties };
    this.undo?.push({ partition, rk, row: partition.get(rk) });
    partition.set(rk, row);
    return row;
  }

  private table(name: string): Table {
    const t = this.tables.get(name.toLowerCase());
    if (!t) throw notFound("TableNotFound", "The table specified does not exist.");
    return t;
  }

  private partition(table: string, pk: string, create: boolean): Partition | undefined {
    const t = this.table(table);
    let p = t.partitions.get(pk);
    if (!p && create) t.partitions.set(pk, (p = new OrderedMap<Row>()));
    return p;
  }
}

function props(body: Record<string, unknown>): Properties {
  try {
    return propertiesOf(body);
  } catch (error) {
    if (error instanceof BadEntity)
      throw new TableError(400, error.code, error.code === "InvalidInput" ? `One of the request inputs is not valid. ${error.message}` : error.message);
    throw error;
  }
}

/** The entity as it would be stored (a merge's included) against Azure's 1 MiB: 400 EntityTooLarge. */
function checkEntitySize(pk: string, rk: string, properties: Properties): void {
  if (entitySize(pk, rk, properties) > MAX_ENTITY_BYTES)
    throw new TableError(400, "EntityTooLarge", "The entity is larger than the maximum allowed size (1MB).");
}

function precondition(row: Row | undefined, ifMatch: string): void {
  if (!row) throw notFound("ResourceNotFound", "The specified resource does not exist.");
  if (ifMatch !== "*" && ifMatch !== row.etag)
    throw new TableError(412, "UpdateConditionNotSatisfied", "The update condition specified in the request was not satisfied.");
}

function checkKeys(pk: string, rk: string): void {
  if (BAD_KEY.test(pk) || BAD_KEY.test(rk)) throw new TableError(400, "InvalidInput", "One of the request inputs is not valid.");
  if (Buffer.byteLength(pk) > 1024 || Buffer.byteLength(rk) > 1024) throw new TableError(400, "KeyValueTooLarge", "The key value is too large.");
}

const notFound = (code: string, message: string) => new TableError(404, code, message);

/** The first index of sorted `keys` whose key is not below `key` (ordinal order, as the filter compares strings). */
function lowerBound(keys: readonly string[], key: string): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keys[mid]! < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The first index of sorted `keys` whose key is above `key`. */
function upperBound(keys: readonly string[], key: string): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keys[mid]! <= key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function property(row: Row, name: string): Typed | undefined {
  if (name === "PartitionKey") return { type: "Edm.String", value: row.partitionKey };
  if (name === "RowKey") return { type: "Edm.String", value: row.rowKey };
  if (name === "Timestamp") return { type: "Edm.DateTime", value: row.timestamp };
  return row.properties.get(name);
}

/** The partition a filter is confined to (`PartitionKey eq '…'` in its top-level `and` chain), so a query scans one. */
function fixedPartition(filter: string): string | undefined {
  if (/\b(or|not)\b/i.test(filter.replace(/'(?:[^']|'')*'/g, "''"))) return undefined;
  const m = /(?:^|\band\s+|^\s*\(?\s*)PartitionKey\s+eq\s+'((?:[^']|'')*)'/.exec(filter);
  return m ? m[1]!.replace(/''/g, "'") : undefined;
}
