/**
 * What the in-memory Table service refuses as Azure does where Azurite does not check (so the differential test
 * cannot hold it to these): a row twice in one transaction, a transaction of over 100 operations,
 * a request not signed with the account key.
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
});
