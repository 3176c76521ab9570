/**
 * Azurite's own rate for single-entity inserts: `concurrency` workers each inserting its next row as soon as the last
 * one answered, through the same SDK client the registry uses. Measured in the same run as a figure that depends on
 * it, it says how fast the machine's storage stand-in is at that moment (the ratio of the two is what compares runs).
 */
import { TableClient } from "@azure/data-tables";
import { performance } from "node:perf_hooks";
import { randomUUID } from "node:crypto";

export interface InsertRate {
  insertsPerSec: number;
  inserts: number;
  concurrency: number;
}

export async function azuriteInsertRate(connectionString: string, options: { inserts: number; concurrency: number }): Promise<InsertRate> {
  const table = TableClient.fromConnectionString(connectionString, `benchinserts${randomUUID().replace(/-/g, "").slice(0, 12)}`, {
    allowInsecureConnection: true,
  });
  await table.createTable();
  try {
    // Warm-up (not measured): connections and the table.
    await Promise.all(Array.from({ length: options.concurrency }, (_, i) => table.createEntity({ partitionKey: "warm", rowKey: String(i) })));
    let next = 0;
    const worker = async () => {
      // A partition per worker, rows of a realistic size: like enrolments into one pool, no two inserts collide.
      for (let i = next++; i < options.inserts; i = next++) {
        await table.createEntity({ partitionKey: `p${i % options.concurrency}`, rowKey: `r${i}`, body: "x".repeat(1024) });
      }
    };
    const started = performance.now();
    await Promise.all(Array.from({ length: options.concurrency }, worker));
    const elapsedMs = performance.now() - started;
    return { insertsPerSec: Math.round((options.inserts / elapsedMs) * 10_000) / 10, inserts: options.inserts, concurrency: options.concurrency };
  } finally {
    await table.deleteTable();
  }
}
