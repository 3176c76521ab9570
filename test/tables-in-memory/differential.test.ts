/**
 * The in-memory Table service against Azurite: the same random sequences of operations (inserts, merges, replaces,
 * upserts, deletes with current, stale or wildcard ETags, transactions, filtered and paged queries) through the same
 * unmodified TableClient, one on Azurite over HTTP, one on the in-memory transport; every answer (status, error code,
 * entity, query page) must be the same. A stand-in that forgives what Azurite refuses fails here.
 */
import { randomUUID } from "node:crypto";
import fc from "fast-check";
import { RestError, TableClient, TableServiceClient, type TableEntityResult, type TransactionAction } from "@azure/data-tables";
import { describe, expect, inject, it } from "vitest";
import { inMemoryTables } from "./index.js";

const PKS = ["p1", "p2", "o'q"];
const RKS = ["a", "b", "node:1", "node:2", "node;", "z"];
const STATUSES = ["Enrolling", "Ready", "Offboarded"];

type Op =
  | { kind: "insert" | "upsertReplace" | "upsertMerge"; pk: string; rk: string; props: Record<string, unknown> }
  | { kind: "replace" | "merge"; pk: string; rk: string; props: Record<string, unknown>; etag: "current" | "stale" | "*" }
  | { kind: "delete"; pk: string; rk: string; etag: "current" | "stale" | "*" }
  | { kind: "get"; pk: string; rk: string }
  | { kind: "transaction"; pk: string; actions: { action: "create" | "delete" | "update" | "upsert"; rk: string; props: Record<string, unknown> }[] }
  | { kind: "query"; filter: string; top: number; select: boolean };

const props = fc.record(
  {
    status: fc.constantFrom(...STATUSES),
    n: fc.integer({ min: -3, max: 3 }),
    at: fc.date({ min: new Date("2026-01-01T00:00:00Z"), max: new Date("2026-01-02T00:00:00Z"), noInvalidDate: true }),
    big: fc.bigInt({ min: -5n, max: 5n }),
    flag: fc.boolean(),
  },
  { requiredKeys: [] },
);
const key = { pk: fc.constantFrom(...PKS), rk: fc.constantFrom(...RKS) };
const etag = fc.constantFrom("current" as const, "stale" as const, "*" as const);
const filters = fc.constantFrom(
  "PartitionKey eq 'p1'",
  "PartitionKey eq 'o''q' and RowKey ge 'node:' and RowKey lt 'node;'",
  "PartitionKey eq 'p1' and RowKey ge 'node:' and RowKey lt 'node;' and status ne 'Offboarded'",
  "status eq 'Ready' or n gt 1",
  "not (n le 0)",
  "n ge -1 and n lt 2",
  "at lt datetime'2026-01-01T12:00:00Z'",
  "flag eq true",
  "big gt 0L",
  "RowKey eq 'z' or (PartitionKey eq 'p2' and status eq 'Enrolling')",
  // RowKey bounds narrow the rows a query reads: across partitions, exclusive ends, eq, contradictions, not.
  "RowKey gt 'b' and RowKey lt 'node;'",
  "(RowKey ge 'node:2') and RowKey le 'z' and n ge 0",
  "RowKey eq 'node:1'",
  "RowKey eq 'a' and RowKey eq 'b'",
  "RowKey ge 'z' and RowKey le 'a'",
  "not (RowKey lt 'node:')",
  "missing eq 'x'",
  "missing ne 'x'",
);
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constantFrom("insert" as const, "upsertReplace" as const, "upsertMerge" as const), ...key, props }),
  fc.record({ kind: fc.constantFrom("replace" as const, "merge" as const), ...key, props, etag }),
  fc.record({ kind: fc.constant("delete" as const), ...key, etag }),
  fc.record({ kind: fc.constant("get" as const), ...key }),
  fc.record({
    kind: fc.constant("transaction" as const),
    pk: fc.constantFrom(...PKS),
    // One action per row: Azure refuses a second (400 InvalidDuplicateRow) where Azurite runs it (see below).
    actions: fc.uniqueArray(
      fc.record({ action: fc.constantFrom("create" as const, "delete" as const, "update" as const, "upsert" as const), rk: fc.constantFrom(...RKS), props }),
      {
        minLength: 1,
        maxLength: 4,
        selector: (a) => a.rk,
      },
    ),
  }),
  fc.record({ kind: fc.constant("query" as const), filter: filters, top: fc.constantFrom(1, 2, 1000), select: fc.boolean() }),
);

/** One side: a TableClient and the ETags it has seen per row (the latest, and the one before). */
class Side {
  private readonly etags = new Map<string, string[]>();
  constructor(readonly table: TableClient) {}

  private seen(pk: string, rk: string, etag: string | undefined): void {
    if (!etag) return;
    const list = this.etags.get(`${pk}/${rk}`) ?? [];
    list.push(etag);
    this.etags.set(`${pk}/${rk}`, list.slice(-2));
  }
  private etagFor(pk: string, rk: string, which: "current" | "stale" | "*"): string {
    const list = this.etags.get(`${pk}/${rk}`) ?? [];
    if (which === "*") return "*";
    // Without a remembered ETag, one the service never issued: a 412 (or 404) either way.
    return (which === "current" ? list.at(-1) : list.at(-2)) ?? `W/"datetime'2020-01-01T00%3A00%3A00.0000000Z'"`;
  }

  async run(o: Op): Promise<unknown> {
    try {
      return await this.apply(o);
    } catch (error) {
      if (!(error instanceof RestError)) throw error;
      const code = error.code ?? /"code":"([^"]+)"/.exec(error.message)?.[1];
      const index = /^(\d+):/.exec(error.message)?.[1];
      return { status: error.statusCode, code, index };
    }
  }

  private async apply(o: Op): Promise<unknown> {
    const t = this.table;
    switch (o.kind) {
      case "insert":
        this.seen(o.pk, o.rk, (await t.createEntity({ partitionKey: o.pk, rowKey: o.rk, ...o.props })).etag);
        return "ok";
      case "upsertReplace":
      case "upsertMerge":
        this.seen(o.pk, o.rk, (await t.upsertEntity({ partitionKey: o.pk, rowKey: o.rk, ...o.props }, o.kind === "upsertMerge" ? "Merge" : "Replace")).etag);
        return "ok";
      case "replace":
      case "merge":
        this.seen(
          o.pk,
          o.rk,
          (
            await t.updateEntity({ partitionKey: o.pk, rowKey: o.rk, ...o.props }, o.kind === "merge" ? "Merge" : "Replace", {
              etag: this.etagFor(o.pk, o.rk, o.etag),
            })
          ).etag,
        );
        return "ok";
      case "delete":
        await t.deleteEntity(o.pk, o.rk, { etag: this.etagFor(o.pk, o.rk, o.etag) });
        return "ok";
      case "get": {
        const e = await t.getEntity(o.pk, o.rk);
        this.seen(o.pk, o.rk, e.etag);
        return comparable(e);
      }
      case "transaction": {
        const actions: TransactionAction[] = o.actions.map((a) =>
          a.action === "delete"
            ? ["delete", { partitionKey: o.pk, rowKey: a.rk }]
            : a.action === "create"
              ? ["create", { partitionKey: o.pk, rowKey: a.rk, ...a.props }]
              : [a.action, { partitionKey: o.pk, rowKey: a.rk, ...a.props }, "Merge"],
        );
        const result = await t.submitTransaction(actions);
        return result.status;
      }
      case "query": {
        const pages = t
          .listEntities({ queryOptions: { filter: o.filter, ...(o.select ? { select: ["RowKey", "status"] } : {}) } })
          .byPage({ maxPageSize: o.top });
        const out: unknown[] = [];
        for await (const page of pages) out.push(page.map(comparable));
        return out.flat();
      }
    }
  }
}

/** An entity without what differs by design between two services: ETag, Timestamp, metadata. */
function comparable(e: TableEntityResult<Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(e))
    if (k !== "etag" && k !== "timestamp" && !k.startsWith("odata")) out[k] = typeof v === "bigint" ? `${v}n` : v instanceof Date ? v.toISOString() : v;
  return out;
}

async function freshSide(
  connectionString: string,
  httpClient?: TableServiceClient["pipeline"] extends never ? never : Parameters<typeof TableClient.fromConnectionString>[2],
): Promise<Side> {
  const name = `d${randomUUID().replace(/-/g, "").slice(0, 20)}`;
  const options = { allowInsecureConnection: true, ...httpClient };
  await TableServiceClient.fromConnectionString(connectionString, options).createTable(name);
  return new Side(TableClient.fromConnectionString(connectionString, name, options));
}

describe("in-memory Table service against Azurite", () => {
  it("answers every operation sequence as Azurite does", { timeout: 240_000 }, async () => {
    const azurite = inject("azuriteConnectionString");
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 5, maxLength: 25 }), async (ops) => {
        const memory = inMemoryTables();
        const real = await freshSide(azurite);
        const fake = await freshSide(memory.connectionString, { httpClient: memory.httpClient });
        for (const [i, o] of ops.entries()) {
          const expected = await real.run(o);
          expect(await fake.run(o), `op ${i}: ${JSON.stringify(o, (_, v: unknown) => (typeof v === "bigint" ? `${v}n` : v))}`).toEqual(expected);
        }
      }),
      {
        numRuns: Number(process.env.TABLES_DIFF_RUNS ?? 40),
        seed: Number(process.env.TABLES_DIFF_SEED ?? 16),
        endOnFailure: process.env.TABLES_DIFF_SHRINK === undefined,
      },
    );
  });
});
