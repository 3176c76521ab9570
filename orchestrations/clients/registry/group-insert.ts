/**
 * Inserts into one table, group-committed per partition: a row that arrives while an insert to its partition is in
 * flight waits for it, and every row that waited goes in the next request, one entity-group transaction (within the
 * service's limits of 100 rows and 4 MiB). Each caller's promise settles with the request that carried its row, so a
 * caller still returns only once its row is stored. A transaction is atomic, so one bad row (one the service refuses:
 * too large a value, a key taken) would fail every row beside it; when the service names the refused action, only its
 * writer gets the error and the other rows go again, in the next request. An error that names no action (the request
 * failed as a whole, or its fate is unknown) reaches every caller of the request. Alone, a row is one plain insert,
 * as without this.
 *
 * Why: the audit log's rows of a day share one partition, and at fleet speed every enrolment writes one. Concurrent
 * enrolments then share audit requests instead of each paying one (the issue-16 enrolment benchmark).
 */
import { isRestError } from "@azure/core-rest-pipeline";
import type { TableClient, TableEntity, TransactionAction } from "@azure/data-tables";

/** Entity-group transactions take at most 100 operations and 4 MiB of payload; half that leaves room for the framing. */
const MAX_BATCH = 100;
const MAX_BATCH_BYTES = 2 * 1024 * 1024;

/** An upper bound on a row's size on the wire (UTF-8 needs at most 3 bytes per UTF-16 unit; numbers and flags ~20). */
function sizeOf(row: TableEntity): number {
  let bytes = 0;
  for (const [key, value] of Object.entries(row)) bytes += 3 * key.length + (typeof value === "string" ? 3 * value.length : 20) + 64;
  return bytes;
}

interface Waiting {
  row: TableEntity;
  resolve(): void;
  reject(error: unknown): void;
}

export class GroupInsert {
  /** Rows waiting per partition; a partition is present while an insert to it is in flight. */
  private readonly partitions = new Map<string, Waiting[]>();

  constructor(private readonly table: TableClient) {}

  insert(row: TableEntity): Promise<void> {
    return new Promise((resolve, reject) => {
      const waiting = this.partitions.get(row.partitionKey);
      if (waiting) return void waiting.push({ row, resolve, reject });
      const queue: Waiting[] = [{ row, resolve, reject }];
      this.partitions.set(row.partitionKey, queue);
      void this.drain(row.partitionKey, queue);
    });
  }

  private async drain(partitionKey: string, queue: Waiting[]): Promise<void> {
    while (queue.length > 0) {
      let count = 0;
      for (let bytes = 0; count < Math.min(queue.length, MAX_BATCH); count++) {
        bytes += sizeOf(queue[count]!.row);
        if (count > 0 && bytes > MAX_BATCH_BYTES) break;
      }
      const batch = queue.splice(0, count);
      try {
        if (batch.length === 1) await this.table.createEntity(batch[0]!.row);
        else await this.table.submitTransaction(batch.map((w): TransactionAction => ["create", w.row]));
        for (const w of batch) w.resolve();
      } catch (error) {
        const refused = batch.length > 1 ? refusedAction(error) : undefined;
        if (refused === undefined || refused >= batch.length) {
          for (const w of batch) w.reject(error);
          continue;
        }
        // Nothing of the transaction was stored: the refused row's writer hears why, the others go again, ahead of
        // rows that arrived meanwhile. Each round removes one row, so a batch with several bad rows still ends.
        batch[refused]!.reject(error);
        queue.unshift(...batch.filter((_, i) => i !== refused));
      }
    }
    this.partitions.delete(partitionKey);
  }
}

/**
 * The index of the action a failed transaction names: the service starts the error's message with it
 * ("1:The specified entity already exists."), as in-flight.ts reads it too. Undefined when it names none.
 */
function refusedAction(error: unknown): number | undefined {
  if (!isRestError(error) || error.statusCode === undefined) return undefined;
  const m = /^(\d+):/.exec(error.message);
  return m ? Number(m[1]) : undefined;
}
