/**
 * Node-request nonces (contract/nonce-store.ts). Table `nonces`: PK key id, RK nonce, with `at` (when recorded) and
 * `expiresAt` (after which the request's signature time check refuses it anyway). Insert-only, so a replay inside the
 * skew window conflicts and is refused.
 */
import type { TableClient } from "@azure/data-tables";
import type { NonceClaim, NonceStore } from "../../../contract/nonce-store.js";
import { insertOnce, purgeWhere, type Clock } from "./table-rows.js";

export class NonceTable implements NonceStore {
  constructor(
    private readonly table: TableClient,
    private readonly now: Clock,
  ) {}

  /** Records a signed request's nonce; false when this key used it before (a replay). Atomic: an insert. */
  claim(entry: NonceClaim): Promise<boolean> {
    return insertOnce(this.table, { partitionKey: entry.keyId, rowKey: entry.nonce, at: this.now(), expiresAt: entry.expiresAt });
  }

  /**
   * Deletes nonces past their expiry, and any row recorded before `recordedBefore`: that also clears the result
   * claims this table held before they had their own (claims.ts), which carry no expiry. Returns how many rows went.
   */
  purge(recordedBefore: Date): Promise<number> {
    return purgeWhere(this.table, `expiresAt lt datetime'${this.now().toISOString()}' or at lt datetime'${recordedBefore.toISOString()}'`);
  }
}
