/**
 * A pool's in-flight count: the `$counter` row (field `inFlight`) in the pool's partition of the `nodes` table. It
 * lives beside the node rows it counts so that "create a node and take a slot" and "leave in-flight and free the slot"
 * are single entity-group transactions: the count cannot drift from the nodes. Every move is guarded by the counter's
 * ETag and refused (PoolFull) when it would take the pool past its limit; freeing never goes below zero.
 */
import type { TableClient, TransactionAction } from "@azure/data-tables";
import { isRestError } from "@azure/core-rest-pipeline";
import { RegistryError, backoff, deleteIfPresent, ETAG_ATTEMPTS, read, status } from "./table-rows.js";

const COUNTER = "$counter";

export class InFlightCounter {
  /** `table` is the `nodes` table. */
  constructor(private readonly table: TableClient) {}

  /** Creates the pool's counter at zero unless it exists. */
  async ensure(pool: string): Promise<void> {
    try {
      await this.table.createEntity({ partitionKey: pool, rowKey: COUNTER, inFlight: 0 });
    } catch (error) {
      if (status(error) !== 409) throw error;
    }
  }

  /** Removes the pool's counter (the pool is being deleted). */
  async remove(pool: string): Promise<void> {
    await deleteIfPresent(this.table, pool, COUNTER);
  }

  async count(pool: string): Promise<number> {
    const counter = await read(this.table, pool, COUNTER);
    return (counter?.inFlight as number | undefined) ?? 0;
  }

  /**
   * Runs `actions` (rows of the pool's partition in `nodes`) in one transaction with the counter moved by `delta`
   * under its ETag. Action 0 is the node's create or update: its 409 is NodeExists, its 412 Conflict (the caller
   * re-reads); a 412 on the counter is retried here.
   */
  async transact(pool: string, limit: number, delta: number, actions: () => TransactionAction[]): Promise<void> {
    await this.ensure(pool);
    for (let i = 0; i < ETAG_ATTEMPTS; i++) {
      const counter = (await read(this.table, pool, COUNTER))!;
      const inFlight = counter.inFlight as number;
      if (delta > 0 && inFlight + delta > limit) throw new RegistryError("PoolFull", `pool '${pool}' has ${inFlight} of ${limit} onboarding slots in use`);
      const batch = actions();
      if (delta !== 0)
        batch.push(["update", { partitionKey: pool, rowKey: COUNTER, inFlight: Math.max(0, inFlight + delta) }, "Replace", { etag: counter.etag }]);
      try {
        await this.table.submitTransaction(batch);
        return;
      } catch (error) {
        const code = status(error);
        // The service names the failed action by index at the start of the message ("0:The specified entity…");
        // the node create/update is action 0, the counter the last one.
        const failedIndex = isRestError(error) ? Number(/^(\d+):/.exec(error.message)?.[1]) : undefined;
        if (code === 409 && failedIndex === 0) throw new RegistryError("NodeExists", "the node exists already");
        if (code === 412 && failedIndex === 0) throw new RegistryError("Conflict", "the node changed concurrently");
        if (code === 412) {
          await backoff(i);
          continue;
        }
        throw error;
      }
    }
    throw new RegistryError("TooManyRetries", `pool '${pool}' is too contended; retry`);
  }
}
