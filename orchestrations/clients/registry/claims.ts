/**
 * Result claims: "this step result was handed to its saga already", so an at-least-once consumer (the node-results
 * trigger) raises each result once. Table `claims`: PK the caller's partition (`result:<node>`), RK its key
 * (`<instance>@<run>:<step>:<attempt>`), with `at`. Insert-only: of two concurrent claims exactly one wins. A claim is
 * released when the work it guards failed (so the redelivery does it), and purged by age: redeliveries come within
 * minutes, not days.
 */
import type { TableClient } from "@azure/data-tables";
import { deleteIfPresent, insertOnce, purgeWhere, type Clock } from "./table-rows.js";

export class ResultClaims {
  constructor(
    private readonly table: TableClient,
    private readonly now: Clock,
  ) {}

  /** Records that (partition, key) was handled; false if it had been already. */
  claimOnce(partition: string, key: string, fields: Record<string, unknown> = {}): Promise<boolean> {
    return insertOnce(this.table, { partitionKey: partition, rowKey: key, at: this.now(), ...fields });
  }

  async release(partition: string, key: string): Promise<void> {
    await deleteIfPresent(this.table, partition, key);
  }

  /** Deletes claims made before `before`; returns how many went. */
  purge(before: Date): Promise<number> {
    return purgeWhere(this.table, `at lt datetime'${before.toISOString()}'`);
  }
}
