/**
 * Enrolment tokens. Rows in the `index` table's partition (PK "node", RK `token:<token id>`; node-index.ts has the
 * rest of that partition), so a first-time enrolment can take a single-use token's use in the same transaction as its
 * key binding and nonce (`useAction`): one request fewer per node. Tokens made before that lived in table `tokens`
 * (PK "token", RK the token id); they are still read, listed after the others and changed where they are, and never
 * moved (a row copied while a redemption of it was in flight would hand out a use twice). Only a SHA-256 of the
 * token's secret is stored.
 * Every change is a read-validate-write under the row's ETag, retried on 412, so concurrent redemptions serialise
 * (with a single-use token exactly one caller sees `uses` go from 0 to 1). A token shared by many nodes is therefore
 * one row all its redemptions update; tokens are meant one per node (or a few nodes), and a pool's enrolments with
 * their own tokens share no row (the pool's capacity is slot rows, in-flight.ts). Creation, expiry and revocation are audited.
 *
 * Within one process, changes to one token are group-committed: while a write of the token is in flight, the changes
 * that arrive wait, and then go together, applied in order to the row as that write left it and written as one
 * change. 32 enrolments at once with a shared token used to spend 11 requests each on 412s and back-off (and now and
 * then ran out of attempts: a 503); queued one by one they wrote once each, and a token's redemptions could go no
 * faster than one write's round trip; grouped, they share writes. A change refused (it throws, or has nothing to do)
 * leaves the others of its group unaffected; a write that fails fails every change of its group (none was stored).
 * The ETag still decides: other processes, and the admin API, change the row too, and a stale guess costs a 412 and a
 * read, after which the whole group is applied again to the row as read.
 */
import type { TableClient, TransactionAction } from "@azure/data-tables";
import { TokenRecord } from "./model.js";
import type { AuditLog } from "./audit.js";
import { INDEX_PARTITION } from "./node-index.js";
import { RegistryError, backoff, deleteIfPresent, escape, ETAG_ATTEMPTS, fromRow, page, read, status, toRow, type Clock, type Page } from "./table-rows.js";

const TOKEN = "token:";
/** Where a token's row is: the index partition, or (made before it moved there) table `tokens`. */
interface Place {
  table: TableClient;
  partitionKey: string;
  rowKey: string;
}
/**
 * A continuation token is the SDK's shape (base64 of `{ nextPartitionKey, nextRowKey }`, the keys opaque) whichever
 * table it pages, and the admin API accepts no other: a page of table `tokens` is marked by this prefix on
 * `nextPartitionKey`, which no service's key starts with. The prefix alone: that table from its first row.
 */
const LEGACY = "legacy:";
interface Continuation {
  nextPartitionKey: string;
  nextRowKey?: string;
}
const encode = (c: Continuation) => Buffer.from(JSON.stringify(c)).toString("base64");
const decode = (token: string): Partial<Continuation> | undefined => {
  try {
    return JSON.parse(Buffer.from(token, "base64").toString()) as Partial<Continuation>;
  } catch {
    return undefined; // not the SDK's: the SDK refuses it
  }
};
/** The legacy table's page a continuation token asks for (`from`: the SDK's token), or undefined for the index's. */
const legacyPage = (continuationToken: string | undefined): { from?: string } | undefined => {
  const at = continuationToken ? decode(continuationToken) : undefined;
  if (!at?.nextPartitionKey?.startsWith(LEGACY)) return undefined;
  const nextPartitionKey = at.nextPartitionKey.slice(LEGACY.length);
  return nextPartitionKey ? { from: encode({ ...at, nextPartitionKey }) } : {};
};
const legacyContinuation = (sdkToken: string | undefined): string => {
  const at = sdkToken ? decode(sdkToken) : undefined;
  return encode({ ...at, nextPartitionKey: LEGACY + (at?.nextPartitionKey ?? "") });
};

type Change = (t: TokenRecord) => Partial<TokenRecord> | undefined;

interface Waiting {
  change: Change;
  resolve(token: TokenRecord): void;
  reject(error: unknown): void;
}

/** Changes to one token waiting in this process while a write of it is in flight, and the row as the last write left it. */
interface Queue {
  waiting: Waiting[];
  latest?: TokenRecord;
}

export class TokenTable {
  private readonly queues = new Map<string, Queue>();
  /** Ids of tokens found in table `tokens`: no token is made there any more, so this holds at most the ones that were. */
  private readonly legacyIds = new Set<string>();

  constructor(
    private readonly index: TableClient,
    private readonly legacy: TableClient,
    private readonly audit: Pick<AuditLog, "write">,
    private readonly now: Clock,
  ) {}

  private place(tokenId: string): Place {
    return this.legacyIds.has(tokenId)
      ? { table: this.legacy, partitionKey: "token", rowKey: tokenId }
      : { table: this.index, partitionKey: INDEX_PARTITION, rowKey: TOKEN + tokenId };
  }

  async create(record: Omit<TokenRecord, "etag" | "uses" | "createdAt">, actor: string): Promise<TokenRecord> {
    const createdAt = this.now().toISOString();
    await this.index.createEntity(toRow(INDEX_PARTITION, TOKEN + record.tokenId, { ...record, uses: 0, createdAt }));
    await this.audit.write({
      actor,
      action: "token.create",
      objectType: "token",
      objectId: record.tokenId,
      details: { pool: record.pool, maxUses: record.maxUses, expiresAt: record.expiresAt },
    });
    return (await this.get(record.tokenId))!;
  }

  async get(tokenId: string): Promise<TokenRecord | undefined> {
    let entity = this.legacyIds.has(tokenId) ? undefined : await read(this.index, INDEX_PARTITION, TOKEN + tokenId);
    if (!entity) {
      entity = await read(this.legacy, "token", tokenId);
      if (entity) this.legacyIds.add(tokenId);
    }
    return entity ? TokenRecord.parse({ ...fromRow(entity), tokenId }) : undefined;
  }

  /** The index partition's tokens, then table `tokens`'s (one continuation token walks both). */
  async list(options: { pool?: string; maxPageSize?: number; continuationToken?: string } = {}): Promise<Page<TokenRecord>> {
    const pool = options.pool ? ` and pool eq '${escape(options.pool)}'` : "";
    const { continuationToken, maxPageSize = 100 } = options;
    const items: TokenRecord[] = [];
    let legacy = legacyPage(continuationToken);
    if (!legacy) {
      const found = await page(this.index, `PartitionKey eq '${INDEX_PARTITION}' and RowKey ge '${TOKEN}' and RowKey lt 'token;'${pool}`, options);
      items.push(...found.items.map((e) => TokenRecord.parse({ ...fromRow(e), tokenId: String(e.rowKey).slice(TOKEN.length) })));
      if (found.continuationToken) return { items, continuationToken: found.continuationToken };
      if (items.length >= maxPageSize) return { items, continuationToken: legacyContinuation(undefined) };
      legacy = {};
    }
    const found = await page(this.legacy, `PartitionKey eq 'token'${pool}`, { maxPageSize: maxPageSize - items.length, continuationToken: legacy.from });
    for (const e of found.items) {
      this.legacyIds.add(String(e.rowKey));
      items.push(TokenRecord.parse({ ...fromRow(e), tokenId: e.rowKey }));
    }
    return { items, continuationToken: found.continuationToken && legacyContinuation(found.continuationToken) };
  }

  /**
   * The transaction action that takes one use of the token as read (under its ETag), for a write in the index
   * partition; undefined when the use must go through `mutate`: a token in table `tokens`, or one shared by several
   * nodes, whose concurrent redemptions are group-committed (under one ETag, all but one transaction would fail).
   */
  useAction(token: TokenRecord): TransactionAction | undefined {
    if (token.maxUses !== 1 || this.legacyIds.has(token.tokenId)) return undefined;
    return ["update", { partitionKey: INDEX_PARTITION, rowKey: TOKEN + token.tokenId, uses: token.uses + 1 }, "Merge", { etag: token.etag }];
  }

  /** Marks a token whose expiry has passed (the sweeper); false when it was marked, revoked or not yet expired. */
  async expire(tokenId: string, actor: string): Promise<boolean> {
    let changed = false;
    await this.mutate(tokenId, (t) => {
      changed = !t.expiredAt && !t.revokedAt && Date.parse(t.expiresAt) <= this.now().getTime();
      return changed ? { expiredAt: this.now().toISOString() } : undefined;
    });
    if (changed) await this.audit.write({ actor, action: "token.expire", objectType: "token", objectId: tokenId });
    return changed;
  }

  async revoke(tokenId: string, actor: string): Promise<TokenRecord> {
    const token = await this.mutate(tokenId, (t) => (t.revokedAt ? undefined : { revokedAt: this.now().toISOString() }));
    await this.audit.write({ actor, action: "token.revoke", objectType: "token", objectId: tokenId });
    return token;
  }

  /** Revokes the token (so a redemption racing the delete is refused) and removes its row; audited. */
  async remove(tokenId: string, actor: string): Promise<void> {
    await this.revoke(tokenId, actor);
    const { table, partitionKey, rowKey } = this.place(tokenId);
    await deleteIfPresent(table, partitionKey, rowKey);
    await this.audit.write({ actor, action: "token.delete", objectType: "token", objectId: tokenId });
  }

  /**
   * Read-validate-write under the token's ETag, retried on 412. `change` throws to refuse, returns the fields to
   * write, or undefined for "nothing to do". Resolves with the row as written (with every change of its group).
   */
  mutate(tokenId: string, change: Change, options: { known?: TokenRecord } = {}): Promise<TokenRecord> {
    return new Promise((resolve, reject) => {
      const waiting = { change, resolve, reject };
      const queue = this.queues.get(tokenId);
      if (queue) return void queue.waiting.push(waiting);
      const fresh: Queue = { waiting: [waiting] };
      this.queues.set(tokenId, fresh);
      void this.drain(tokenId, fresh, options.known);
    });
  }

  /** Writes the queue's changes, a group at a time, until none waits; the queue is gone once it is empty. */
  private async drain(tokenId: string, queue: Queue, known: TokenRecord | undefined): Promise<void> {
    while (queue.waiting.length > 0) {
      const group = queue.waiting.splice(0);
      // The row as this process last wrote it is newer than the caller's copy whenever a group ran in between.
      queue.latest = await this.writeGroup(tokenId, group, queue.latest ?? known);
      known = undefined;
    }
    this.queues.delete(tokenId);
  }

  /**
   * Applies the group's changes in order to one copy of the row and writes them as one change; settles each caller.
   * Answers the row as written, or undefined when the write failed (the next group then reads the row afresh).
   */
  private async writeGroup(tokenId: string, group: Waiting[], known: TokenRecord | undefined): Promise<TokenRecord | undefined> {
    const fail = (error: unknown) => {
      for (const w of group) w.reject(error);
      return undefined;
    };
    try {
      // A known copy (with its ETag) is tried first: uncontended, a group is one request.
      for (let i = 0; i < ETAG_ATTEMPTS; i++) {
        const guessed = known !== undefined;
        const token = known ?? (await this.get(tokenId));
        known = undefined;
        if (!token) return fail(new RegistryError("TokenNotFound", `token '${tokenId}' does not exist`));
        let row = token;
        let patch: Partial<TokenRecord> | undefined;
        const refused = new Map<Waiting, unknown>();
        let unconfirmed = false;
        for (const w of group) {
          try {
            const fields = w.change(row);
            if (fields) {
              row = { ...row, ...fields };
              patch = { ...patch, ...fields };
            } else unconfirmed ||= guessed;
          } catch (error) {
            refused.set(w, error);
            unconfirmed ||= guessed;
          }
        }
        // A refusal (or "nothing to do") stands on the row as read, never on a copy the service has not confirmed.
        if (unconfirmed) continue;
        let written = token;
        if (patch) {
          try {
            const { table, partitionKey, rowKey } = this.place(tokenId);
            const { etag } = await table.updateEntity(toRow(partitionKey, rowKey, patch), "Merge", { etag: token.etag });
            written = etag ? { ...row, etag } : (await this.get(tokenId))!;
          } catch (error) {
            if (status(error) !== 412) throw error;
            await backoff(i);
            continue;
          }
        }
        for (const w of group) {
          if (refused.has(w)) w.reject(refused.get(w));
          else w.resolve(written);
        }
        return written;
      }
      return fail(new RegistryError("TooManyRetries", `token '${tokenId}' is too contended; retry`));
    } catch (error) {
      return fail(error);
    }
  }
}
