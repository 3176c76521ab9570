/**
 * Inserts into one table, group-committed per partition: a row that arrives while an insert to its partition is in
 * flight waits for it, and every row that waited goes in the next request, one entity-group transaction (at most
 * 100 rows, the service's limit). Each caller's promise settles with the request that carried its row, so a caller
 * still returns only once its row is stored, and an error reaches every caller whose row it failed (the transaction
 * is atomic: none of them is stored). Alone, a row is one plain insert, as without this.
 *
 * Why: the audit log's rows of a day share one partition, and at fleet speed every enrolment writes one. Concurrent
 * enrolments then share audit requests instead of each paying one (the issue-16 enrolment benchmark).
 */
import type { TableClient, TableEntity, TransactionAction } from "@azure/data-tables";

/** Entity-group transactions take at most 100 operations. */
const MAX_BATCH = 100;

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
      const batch = queue.splice(0, MAX_BATCH);
      try {
        if (batch.length === 1) await this.table.createEntity(batch[0]!.row);
        else await this.table.submitTransaction(batch.map((w): TransactionAction => ["create", w.row]));
        for (const w of batch) w.resolve();
      } catch (error) {
        for (const w of batch) w.reject(error);
      }
    }
    this.partitions.delete(partitionKey);
  }
}
