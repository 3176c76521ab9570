/**
 * The audit log: who did what, when, to which object. Table `audit`: PK the UTC day (yyyymmdd), RK the time inverted
 * (newest first, since RowKey sorts ascending) plus random bytes, so rows written in the same millisecond never
 * collide. Insert-only: nothing updates or deletes an audit row. The other tables take this log to record mutations.
 * Writes to a day's partition are group-committed (group-insert.ts): concurrent writers share requests, and each
 * returns once its own row is stored.
 */
import { randomBytes } from "node:crypto";
import type { TableClient } from "@azure/data-tables";
import type { AuditEntry } from "./model.js";
import { GroupInsert } from "./group-insert.js";
import { escape, fromRow, toRow, type Clock } from "./table-rows.js";

const dayOf = (at: Date) => at.toISOString().slice(0, 10).replace(/-/g, "");

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
    await this.inserts.insert(toRow(dayOf(at), rowKey, { ...entry, at: at.toISOString() }));
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
