/**
 * Pools. Table `pools`: PK "pool", RK the pool name; the spec's nested fields as JSON text. A pool's in-flight count
 * is not stored here but as slot rows in `nodes` (in-flight.ts), so it moves in the same transaction as the nodes it
 * counts; `get` joins the two, `spec` reads the pool alone. A spec is replaced under the row's ETag
 * (or the caller's If-Match). Every change is audited. Overlapping spec reads share one request (shared-reads.ts).
 *
 * A create or update writes the pool row, then its audit entry: two tables, no transaction between them. So both are
 * checked before the first is written, against the limit on one string property: a spec too long to store is refused
 * having written nothing (PoolRowTooLarge), and the audit entry keeps the spec only when it fits (audit.ts,
 * boundDetails). Otherwise the pool would be written and its audit refused: the admin told 500, and their retry 409.
 */
import type { TableClient } from "@azure/data-tables";
import { Pool, type PoolRecord, type PoolSpec } from "./model.js";
import type { AuditLog } from "./audit.js";
import type { InFlightSlots } from "./in-flight.js";
import { SharedReads } from "./shared-reads.js";
import { RegistryError, fromRow, oversizedProperties, page, read, status, toRow, MAX_STRING_CHARS, type Clock, type Page, type Row } from "./table-rows.js";

/**
 * A spec valid by its schema but too long to store: one of its fields, as the JSON text the row holds, is over the
 * service's limit on one string (47 Arc tags of 512 + 256 characters, say). Nothing was written.
 */
export class PoolRowTooLarge extends Error {
  constructor(
    readonly fields: { name: string; chars: number }[],
    pool: string,
  ) {
    super(
      `pool '${pool}' cannot be stored: ${fields.map((f) => `${f.name} is ${f.chars} characters as stored`).join(", ")}; ` +
        `a field holds at most ${MAX_STRING_CHARS}`,
    );
    this.name = "PoolRowTooLarge";
  }
}

/** Refuses a pool row with a field over the limit on one string, before anything is written. */
function checkFits(row: Row, pool: string): Row {
  const over = oversizedProperties(row);
  if (over.length > 0) throw new PoolRowTooLarge(over, pool);
  return row;
}

/** Built once: a zod schema derived per call is compiled again on its first parse, on every enrolment. */
const PoolSpecRow = Pool.omit({ inFlight: true, waiting: true });

export class PoolTable {
  private readonly specs = new SharedReads<PoolRecord | undefined>();

  constructor(
    private readonly table: TableClient,
    private readonly counter: Pick<InFlightSlots, "count" | "remove">,
    private readonly audit: Pick<AuditLog, "write">,
    private readonly now: Clock,
  ) {}

  async create(name: string, spec: PoolSpec, actor: string): Promise<Pool> {
    const at = this.now().toISOString();
    const row = checkFits(toRow("pool", name, { ...spec, createdAt: at, updatedAt: at }), name);
    try {
      await this.table.createEntity(row);
    } catch (error) {
      if (status(error) === 409) throw new RegistryError("PoolExists", `pool '${name}' already exists`);
      throw error;
    } finally {
      this.specs.forget(name);
    }
    await this.audit.write({ actor, action: "pool.create", objectType: "pool", objectId: name, details: { spec } });
    return (await this.get(name))!;
  }

  async get(name: string): Promise<Pool | undefined> {
    const [spec, count] = await Promise.all([this.spec(name), this.counter.count(name)]);
    return spec && Pool.parse({ ...spec, ...count });
  }

  /** The pool without its in-flight count: one point read (enrolment's view; capacity is enforced by the slots). */
  spec(name: string): Promise<PoolRecord | undefined> {
    // Overlapping reads (concurrent enrolments into one pool) share one request; see shared-reads.ts.
    return this.specs.read(name, async () => {
      const entity = await read(this.table, "pool", name);
      return entity ? PoolSpecRow.parse({ ...fromRow(entity), name }) : undefined;
    });
  }

  async list(options: { maxPageSize?: number; continuationToken?: string } = {}): Promise<Page<Pool>> {
    const found = await page(this.table, "PartitionKey eq 'pool'", options);
    const items = await Promise.all(found.items.map((e) => this.get(e.rowKey as string)));
    return { items: items.filter((p): p is Pool => p !== undefined), continuationToken: found.continuationToken };
  }

  /**
   * Deletes a pool the caller found empty, under the ETag it was read with (so a change in between refuses), with its
   * slot rows; audited. PoolNotFound when it is gone already.
   */
  async remove(name: string, actor: string): Promise<void> {
    const current = await read(this.table, "pool", name);
    if (!current) throw new RegistryError("PoolNotFound", `pool '${name}' does not exist`);
    const count = await this.counter.count(name);
    if (count.inFlight + count.waiting > 0) throw new RegistryError("Conflict", `pool '${name}' has onboarding or offboarding in flight`);
    try {
      await this.table.deleteEntity("pool", name, { etag: current.etag });
    } catch (error) {
      if (status(error) === 412) throw new RegistryError("Conflict", `pool '${name}' was changed by someone else; read it again`);
      if (status(error) === 404) throw new RegistryError("PoolNotFound", `pool '${name}' does not exist`);
      throw error;
    } finally {
      this.specs.forget(name);
    }
    await this.counter.remove(name);
    await this.audit.write({ actor, action: "pool.delete", objectType: "pool", objectId: name });
  }

  /** Replaces a pool's spec; with `ifMatch`, only if nobody changed it since that ETag. */
  async update(name: string, spec: PoolSpec, actor: string, ifMatch?: string): Promise<Pool> {
    const current = await read(this.table, "pool", name);
    if (!current) throw new RegistryError("PoolNotFound", `pool '${name}' does not exist`);
    const row = checkFits(toRow("pool", name, { ...spec, createdAt: current.createdAt, updatedAt: this.now().toISOString() }), name);
    try {
      await this.table.updateEntity(row, "Replace", { etag: ifMatch ?? current.etag });
    } catch (error) {
      if (status(error) === 412) throw new RegistryError("Conflict", `pool '${name}' was changed by someone else; read it again`);
      throw error;
    } finally {
      this.specs.forget(name);
    }
    await this.audit.write({ actor, action: "pool.update", objectType: "pool", objectId: name, details: { spec } });
    return (await this.get(name))!;
  }
}
