/**
 * Result claims: "this step result was handed to its saga already", so an at-least-once consumer (the node-results
 * trigger) raises each result once. Table `claims`: PK the caller's partition (`result:<node>`), RK its key
 * (`<instance>@<run>:<step>:<attempt>`), with `at`. Insert-only: of two concurrent claims exactly one wins. A claim is
 * released when the work it guards failed (so the redelivery does it), and purged by age: redeliveries come within
 * minutes, not days. Keys carry parts a node signed (its step and saga ids), which may hold characters Azure Tables
 * refuses in a key: such a key is stored under its digest (keyOf), so the insert cannot fail and leave the at-least-once
 * caller retrying a message that can never be claimed.
 */
import { createHash } from "node:crypto";
import type { TableClient } from "@azure/data-tables";
import { deleteIfPresent, insertOnce, purgeWhere, type Clock } from "./table-rows.js";

/** Marks a digested key; a caller's key that begins with it is digested too, so no two keys ever share a row. */
const DIGESTED = "~sha256:";

/**
 * The table key for a caller's key: itself when Azure Tables takes it ('/', '\\', '#', '?' and control characters are
 * refused, and a key is at most 1 KiB: 512 UTF-16 units), its sha256 otherwise.
 */
export function keyOf(key: string): string {
  const fits = key.length <= 512 && !/[/\\#?\u0000-\u001f\u007f-\u009f]/.test(key) && !key.startsWith(DIGESTED);
  return fits ? key : `${DIGESTED}${createHash("sha256").update(key).digest("hex")}`;
}

export class ResultClaims {
  constructor(
    private readonly table: TableClient,
    private readonly now: Clock,
  ) {}

  /** Records that (partition, key) was handled; false if it had been already. */
  claimOnce(partition: string, key: string, fields: Record<string, unknown> = {}): Promise<boolean> {
    return insertOnce(this.table, { partitionKey: keyOf(partition), rowKey: keyOf(key), at: this.now(), ...fields });
  }

  async release(partition: string, key: string): Promise<void> {
    await deleteIfPresent(this.table, keyOf(partition), keyOf(key));
  }

  /** Deletes claims made before `before`; returns how many went. */
  purge(before: Date): Promise<number> {
    return purgeWhere(this.table, `at lt datetime'${before.toISOString()}'`);
  }
}
