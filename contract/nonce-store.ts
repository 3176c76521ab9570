/**
 * Without a record of seen nonces, a captured node request can be replayed until its `created` falls outside the
 * skew window: bounded, not prevented. A NonceStore closes that window. The service can back it with Table storage
 * (PartitionKey keyId, RowKey nonce, insert-only so a second insert conflicts) and purge rows past `expiresAt`.
 */
export interface NonceClaim {
  keyId: string;
  nonce: string;
  /** After this instant the request is refused as stale anyway, so the entry can be forgotten. */
  expiresAt: Date;
}

export interface NonceStore {
  /** Records the nonce; returns false if it was already recorded for this key (a replay). Must be atomic. */
  claim(entry: NonceClaim): boolean | Promise<boolean>;
}
