/**
 * What the in-memory Table service refuses as Azure does where Azurite does not check (so the differential test
 * cannot hold it to these): a row twice in one transaction, a transaction of over 100 operations, a transaction body
 * over 4 MiB, an entity over 1 MiB, a key Azure never stores in a point read or delete, a request not signed with the
 * account key. And one Azurite does check, with its code and message: a string over 32,768 UTF-16 units (64 KiB).
 */
import { RestError, TableClient, TableServiceClient, type TransactionAction } from "@azure/data-tables";
import { describe, expect, it } from "vitest";
import { inMemoryTables } from "./index.js";

async function table(): Promise<TableClient> {
  const m = inMemoryTables();
  const options = { allowInsecureConnection: true, httpClient: m.httpClient };
  await TableServiceClient.fromConnectionString(m.connectionString, options).createTable("rules");
  return TableClient.fromConnectionString(m.connectionString, "rules", options);
}

/** The service's error code: a transaction's RestError has it; others leave it unset, the `odata.error` message has it. */
const codeOf = (e: unknown): string | undefined => (e as RestError).code ?? /"code":"([^"]+)"/.exec(e instanceof Error ? e.message : "")?.[1];
const refusedWith = (status: number, code: string) => (e: unknown) => {
  expect(e).toBeInstanceOf(RestError);
  expect({ status: (e as RestError).statusCode, code: codeOf(e) }).toEqual({ status, code });
};
async function expectRefused(p: Promise<unknown>, status: number, code: string): Promise<void> {
  await p.then(() => expect.unreachable(`accepted; expected ${status} ${code}`), refusedWith(status, code));
}

async function refusal(p: Promise<unknown>): Promise<{ status: number | undefined; message: string }> {
  const error = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(RestError);
  return { status: (error as RestError).statusCode, message: (error as RestError).message };
}

describe("in-memory Table service: Azure's rules Azurite does not check", () => {
  it("refuses a transaction that changes one row twice, naming the second action, and changes nothing", async () => {
    const t = await table();
    const r = await refusal(
      t.submitTransaction([
        ["create", { partitionKey: "p", rowKey: "a" }],
        ["upsert", { partitionKey: "p", rowKey: "a", x: 1 }],
      ]),
    );
    expect(r).toMatchObject({ status: 400, message: expect.stringMatching(/^1:The batch request contains multiple changes with same row key/) });
    await expect(t.getEntity("p", "a")).rejects.toMatchObject({ statusCode: 404 });
  });

  // (A transaction across partitions never leaves the SDK: it refuses it itself.)
  it("refuses a transaction of more than 100 operations", async () => {
    const t = await table();
    const many: TransactionAction[] = Array.from({ length: 101 }, (_, i) => ["create", { partitionKey: "p", rowKey: `r${i}` }]);
    expect((await refusal(t.submitTransaction(many))).status).toBe(400);
    const rows: string[] = [];
    for await (const e of t.listEntities()) rows.push(e.rowKey!);
    expect(rows).toEqual([]);
  });

  it("refuses a request signed with another key (403)", async () => {
    const m = inMemoryTables();
    const wrongKey = m.connectionString.replace(/AccountKey=[^;]+/, `AccountKey=${Buffer.alloc(64, 7).toString("base64")}`);
    const service = TableServiceClient.fromConnectionString(wrongKey, { allowInsecureConnection: true, httpClient: m.httpClient });
    expect((await refusal(service.createTable("nope"))).status).toBe(403);
  });

  it("refuses a string property over 32,768 UTF-16 units (64 KiB) with PropertyValueTooLarge, as Azurite does", async () => {
    const t = await table();
    await t.createEntity({ partitionKey: "p", rowKey: "fits", v: "x".repeat(32 * 1024) });
    const error = await t.createEntity({ partitionKey: "p", rowKey: "over", v: "x".repeat(32 * 1024 + 1) }).catch((e: unknown) => e);
    refusedWith(400, "PropertyValueTooLarge")(error);
    expect((error as RestError).message).toMatch(/maximum number of characters should be 32K or less/);
    // Units, not bytes: 20,000 three-byte characters are 60,000 bytes of UTF-8 and fit; 16,385 surrogate pairs do not.
    await t.createEntity({ partitionKey: "p", rowKey: "bmp", v: "€".repeat(20_000) });
    await expectRefused(t.createEntity({ partitionKey: "p", rowKey: "astral", v: "😀".repeat(16_385) }), 400, "PropertyValueTooLarge");
    // A Binary counts its bytes.
    await expectRefused(t.createEntity({ partitionKey: "p", rowKey: "bin", b: new Uint8Array(64 * 1024 + 1) }), 400, "PropertyValueTooLarge");
    await expectRefused(t.upsertEntity({ partitionKey: "p", rowKey: "fits", v: "y".repeat(40_000) }, "Merge"), 400, "PropertyValueTooLarge");
    expect((await t.getEntity<{ v: string }>("p", "fits")).v).toHaveLength(32 * 1024);
  });

  it("refuses the whole transaction for one oversized value, naming its action", async () => {
    const t = await table();
    const r = await refusal(
      t.submitTransaction([
        ["create", { partitionKey: "p", rowKey: "a" }],
        ["create", { partitionKey: "p", rowKey: "b", v: "x".repeat(40_000) }],
      ]),
    );
    expect(r).toMatchObject({ status: 400, message: expect.stringMatching(/^1:The property value exceeds the maximum allowed size/) });
    await expect(t.getEntity("p", "a")).rejects.toMatchObject({ statusCode: 404 });
  });

  it("refuses an entity over 1 MiB as Azure sizes it (EntityTooLarge), a merge's result included", async () => {
    const t = await table();
    // Strings count 2 bytes a UTF-16 unit: 17 properties of 32,000 characters are 17 × (8 + 2·3 + 4 + 64,000) ≈ 1.04 MiB.
    const props = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`p${i}`, "x".repeat(32_000)]));
    await t.createEntity({ partitionKey: "p", rowKey: "r", ...props(16) });
    await expectRefused(t.createEntity({ partitionKey: "p", rowKey: "s", ...props(17) }), 400, "EntityTooLarge");
    await expectRefused(t.updateEntity({ partitionKey: "p", rowKey: "r", p16: "x".repeat(32_000) }, "Merge"), 400, "EntityTooLarge");
  });

  it("refuses a transaction whose body is over 4 MiB of UTF-8 (413 RequestBodyTooLarge), storing nothing", async () => {
    const t = await table();
    // Each row 15 strings of 30,000 '€': ~0.9 MB as Azure sizes an entity (UTF-16), 1.35 MB of UTF-8 on the wire.
    const row = (i: number) => ({
      partitionKey: "p",
      rowKey: `r${i}`,
      ...Object.fromEntries(Array.from({ length: 15 }, (_, j) => [`s${j}`, "€".repeat(30_000)])),
    });
    const rows = (n: number) => Array.from({ length: n }, (_, i): TransactionAction => ["create", row(i)]);
    await expectRefused(t.submitTransaction(rows(4)), 413, "RequestBodyTooLarge");
    const stored: string[] = [];
    for await (const e of t.listEntities()) stored.push(e.rowKey!);
    expect(stored).toEqual([]);
    // Under the limit, the same rows go.
    await t.submitTransaction(rows(3));
  });

  it.each(["a/b", "a\\b", "a#b", "a?b", "a\u0001b", "a\u007fb"])("refuses key %j in a point read and a delete (400), as in a write", async (bad) => {
    const t = await table();
    await expectRefused(t.createEntity({ partitionKey: "p", rowKey: bad }), 400, "InvalidInput");
    await expectRefused(t.getEntity("p", bad), 400, "InvalidInput");
    await expectRefused(t.getEntity(bad, "r"), 400, "InvalidInput");
    await expectRefused(t.deleteEntity("p", bad), 400, "InvalidInput");
    // A good key that is absent is still 404.
    await expectRefused(t.getEntity("p", "absent"), 404, "ResourceNotFound");
  });
});
