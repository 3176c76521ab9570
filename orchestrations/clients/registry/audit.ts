/**
 * The audit log: who did what, when, to which object. Table `audit`: PK the UTC day (yyyymmdd), RK the time inverted
 * (newest first, since RowKey sorts ascending) plus random bytes, so rows written in the same millisecond never
 * collide. Insert-only: nothing updates or deletes an audit row. The other tables take this log to record mutations.
 * Writes to a day's partition are group-committed (group-insert.ts): concurrent writers share requests, and each
 * returns once its own row is stored.
 *
 * An entry's details are one JSON string property, so they are held to the service's limit on one string
 * (MAX_STRING_CHARS): what does not fit is kept as its SHA-256 and length instead (boundDetails). A pool's spec, say,
 * can be valid and still longer than that; its audit entry must not fail after the pool was written.
 */
import { createHash, randomBytes } from "node:crypto";
import type { TableClient } from "@azure/data-tables";
import type { AuditEntry } from "./model.js";
import { GroupInsert } from "./group-insert.js";
import { MAX_STRING_CHARS, escape, fromRow, toRow, type Clock } from "./table-rows.js";

const dayOf = (at: Date) => at.toISOString().slice(0, 10).replace(/-/g, "");

/** What stands for a value too long to keep: the SHA-256 of its JSON (as the table holding it stores it) and its length. */
export interface Omitted {
  omitted: true;
  sha256: string;
  chars: number;
}

const omit = (json: string): Omitted => ({ omitted: true, sha256: createHash("sha256").update(json).digest("hex"), chars: json.length });
const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Details whose JSON is at most `budget` characters: as given when they fit; otherwise their largest fields, largest
 * first, shrunk the same way (an object, one level down: a spec's fields) or replaced by an Omitted (anything else, and
 * deeper objects: never half a label map) until the rest fits, so the small fields an admin reads (a pool's cluster,
 * its policies) stay.
 */
export function boundDetails(details: Record<string, unknown>, budget = MAX_STRING_CHARS): Record<string, unknown> {
  const bounded = shrink(details, budget, 2);
  return isPlainObject(bounded) ? bounded : { details: bounded };
}

/** `depth`: how many levels of objects may be shrunk field by field (the details, then e.g. their spec); deeper, whole. */
function shrink(value: unknown, budget: number, depth: number): unknown {
  const json = JSON.stringify(value);
  if (json === undefined || json.length <= budget) return value;
  if (!isPlainObject(value) || depth === 0) return omit(json);
  const out: Record<string, unknown> = { ...value };
  const bySize = Object.entries(value)
    .map(([k, v]) => [k, JSON.stringify(v)?.length ?? 0] as const)
    .sort((a, b) => b[1] - a[1]);
  for (const [k] of bySize) {
    // The room this field has beside the others as they are now ("null" holds its place: 4 characters).
    const room = budget - (JSON.stringify({ ...out, [k]: null }).length - 4);
    out[k] = shrink(value[k], room, depth - 1);
    if (JSON.stringify(out).length <= budget) return out;
  }
  return omit(json);
}

export class AuditLog {
  private readonly inserts: GroupInsert;

  constructor(
    private readonly table: TableClient,
    private readonly now: Clock,
  ) {
    this.inserts = new GroupInsert(table);
  }

  async write(entry: Omit<AuditEntry, "at">): Promise<void> {
    const at = this.now();
    // Newest first within a day: RowKey sorts ascending, so store the time inverted.
    const rowKey = `${String(8_640_000_000_000_000 - at.getTime()).padStart(16, "0")}-${randomBytes(4).toString("hex")}`;
    const details = entry.details && boundDetails(entry.details);
    await this.inserts.insert(toRow(dayOf(at), rowKey, { ...entry, ...(details ? { details } : {}), at: at.toISOString() }));
  }

  /** One day's entries (today by default), newest first, optionally about one object. */
  async list(options: { day?: Date; objectId?: string } = {}): Promise<AuditEntry[]> {
    const filter = `PartitionKey eq '${dayOf(options.day ?? this.now())}'${options.objectId ? ` and objectId eq '${escape(options.objectId)}'` : ""}`;
    const out: AuditEntry[] = [];
    for await (const e of this.table.listEntities<Record<string, unknown>>({ queryOptions: { filter } })) out.push(fromRow(e) as AuditEntry);
    return out;
  }

  /** Every entry about one object from `since` (at most `maxDays` days back) until now, oldest first. */
  async listForObject(objectId: string, since: Date, maxDays = 31): Promise<AuditEntry[]> {
    const end = this.now();
    const start = Math.max(since.getTime(), end.getTime() - maxDays * 86_400_000);
    const out: AuditEntry[] = [];
    // One partition per day: walk the days oldest first, each (newest first in the table) reversed.
    for (let day = new Date(start); dayOf(day) <= dayOf(end); day = new Date(day.getTime() + 86_400_000)) {
      out.push(...(await this.list({ day, objectId })).reverse());
    }
    return out;
  }
}
