/**
 * How many rejected `node-results` messages the service records per subject (a node whose signature the message
 * carried, or `unknown` for every message not proven to come from a node) in a fixed window. Anyone holding a node's Send token can fill the results queue with
 * garbage; without a quota each message cost an audit row and a stored copy. Rows live in the `claims` table
 * (PK `rejections:<subject>`, RK the window's start) and are purged with the claims by age. A count moves under the
 * row's ETag; once the quota is spent the row is no longer written, so a flood costs reads only.
 */
import type { TableClient } from "@azure/data-tables";
import { insertOnce, read, status, type Clock } from "./table-rows.js";

export interface QuotaTake {
  /** Record this one. */
  allowed: boolean;
  /** This is the first one over the quota in its window (say so once, then stay quiet). */
  firstRefused: boolean;
}

const ATTEMPTS = 8;

export class RejectionQuota {
  constructor(
    private readonly table: TableClient,
    private readonly now: Clock,
  ) {}

  async take(subject: string, limit: number, windowMs: number): Promise<QuotaTake> {
    const now = this.now();
    const partitionKey = `rejections:${subject}`;
    const rowKey = new Date(Math.floor(now.getTime() / windowMs) * windowMs).toISOString();
    for (let i = 0; i < ATTEMPTS; i++) {
      const row = await read(this.table, partitionKey, rowKey);
      if (!row) {
        if (await insertOnce(this.table, { partitionKey, rowKey, at: now, count: 1 })) return { allowed: limit >= 1, firstRefused: limit < 1 };
        continue;
      }
      const count = row.count as number;
      if (count > limit) return { allowed: false, firstRefused: false };
      try {
        await this.table.updateEntity({ partitionKey, rowKey, count: count + 1 }, "Merge", { etag: row.etag });
        return { allowed: count + 1 <= limit, firstRefused: count + 1 === limit + 1 };
      } catch (error) {
        if (status(error) !== 412) throw error;
      }
    }
    // Contended beyond reason: that is a flood; recording nothing is the safe answer.
    return { allowed: false, firstRefused: false };
  }
}
