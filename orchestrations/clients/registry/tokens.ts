/**
 * Enrolment tokens. Table `tokens`: PK "token", RK the token id; only a SHA-256 of the token's secret is stored.
 * Every change is a read-validate-write under the row's ETag, retried on 412, so concurrent redemptions serialise
 * (with a single-use token exactly one caller sees `uses` go from 0 to 1). A token shared by many nodes is therefore
 * one row all its redemptions update; tokens are meant one per node (or a few nodes), and a pool's enrolments with
 * their own tokens share no row (the pool's capacity is slot rows, in-flight.ts). Creation, expiry and revocation are audited.
 *
 * Within one process, changes to one token queue behind each other, and each starts from the row as the previous one
 * left it: 32 enrolments at once with a shared token used to spend 11 requests each on 412s and back-off (and now and
 * then ran out of attempts: a 503), where queued they write once each. The ETag still decides: other processes, and
 * the admin API, change the row too, and a stale guess costs a 412 and a read, as before.
 */
import type { TableClient } from "@azure/data-tables";
import { TokenRecord } from "./model.js";
import type { AuditLog } from "./audit.js";
import { RegistryError, backoff, deleteIfPresent, escape, ETAG_ATTEMPTS, fromRow, page, read, status, toRow, type Clock, type Page } from "./table-rows.js";

/** Changes to one token waiting in this process, and the row as the last of them left it. */
interface Queue {
  tail: Promise<void>;
  waiting: number;
  latest?: TokenRecord;
}

export class TokenTable {
  private readonly queues = new Map<string, Queue>();

  constructor(
    private readonly table: TableClient,
    private readonly audit: Pick<AuditLog, "write">,
    private readonly now: Clock,
  ) {}

  async create(record: Omit<TokenRecord, "etag" | "uses" | "createdAt">, actor: string): Promise<TokenRecord> {
    const createdAt = this.now().toISOString();
    await this.table.createEntity(toRow("token", record.tokenId, { ...record, uses: 0, createdAt }));
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
    const entity = await read(this.table, "token", tokenId);
    return entity ? TokenRecord.parse({ ...fromRow(entity), tokenId }) : undefined;
  }

  async list(options: { pool?: string; maxPageSize?: number; continuationToken?: string } = {}): Promise<Page<TokenRecord>> {
    const filter = `PartitionKey eq 'token'${options.pool ? ` and pool eq '${escape(options.pool)}'` : ""}`;
    const found = await page(this.table, filter, options);
    return { items: found.items.map((e) => TokenRecord.parse({ ...fromRow(e), tokenId: e.rowKey })), continuationToken: found.continuationToken };
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
    await deleteIfPresent(this.table, "token", tokenId);
    await this.audit.write({ actor, action: "token.delete", objectType: "token", objectId: tokenId });
  }

  /**
   * Read-validate-write under the token's ETag, retried on 412. `change` throws to refuse, returns the fields to
   * write, or undefined for "nothing to do".
   */
  async mutate(
    tokenId: string,
    change: (t: TokenRecord) => Partial<TokenRecord> | undefined,
    options: { attempts?: number; known?: TokenRecord } = {},
  ): Promise<TokenRecord> {
    let queue = this.queues.get(tokenId);
    if (!queue) this.queues.set(tokenId, (queue = { tail: Promise.resolve(), waiting: 0 }));
    const before = queue.tail;
    let done!: () => void;
    queue.tail = new Promise((resolve) => (done = resolve));
    queue.waiting++;
    try {
      await before;
      // The row as this process last wrote it is newer than the caller's copy whenever a change ran in between.
      const token = await this.mutateNow(tokenId, change, options.attempts ?? ETAG_ATTEMPTS, queue.latest ?? options.known);
      queue.latest = token;
      return token;
    } catch (error) {
      queue.latest = undefined;
      throw error;
    } finally {
      done();
      if (--queue.waiting === 0) this.queues.delete(tokenId);
    }
  }

  private async mutateNow(
    tokenId: string,
    change: (t: TokenRecord) => Partial<TokenRecord> | undefined,
    attempts: number,
    known: TokenRecord | undefined,
  ): Promise<TokenRecord> {
    // A known copy (with its ETag) is tried first: uncontended, a change is one request.
    for (let i = 0; i < attempts; i++) {
      const guessed = known !== undefined;
      const token = known ?? (await this.get(tokenId));
      known = undefined;
      if (!token) throw new RegistryError("TokenNotFound", `token '${tokenId}' does not exist`);
      const patch = change(token);
      // A refusal (or "nothing to do") stands on the row as read, never on a copy the service has not confirmed.
      if (!patch && guessed) continue;
      if (!patch) return token;
      try {
        const { etag } = await this.table.updateEntity(toRow("token", tokenId, patch), "Merge", { etag: token.etag });
        return etag ? { ...token, ...patch, etag } : (await this.get(tokenId))!;
      } catch (error) {
        if (status(error) !== 412) throw error;
        await backoff(i);
      }
    }
    throw new RegistryError("TooManyRetries", `token '${tokenId}' is too contended; retry`);
  }
}
