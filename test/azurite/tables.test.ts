import { randomUUID } from "node:crypto";
import { RestError, TableClient, TableServiceClient } from "@azure/data-tables";
import { describe, expect, inject, it } from "vitest";

const connectionString = inject("azuriteConnectionString");

async function freshTable(): Promise<TableClient> {
  const name = `t${randomUUID().replace(/-/g, "").slice(0, 20)}`;
  await TableServiceClient.fromConnectionString(connectionString, { allowInsecureConnection: true }).createTable(name);
  return TableClient.fromConnectionString(connectionString, name, { allowInsecureConnection: true });
}

async function statusOf(p: Promise<unknown>): Promise<number | undefined> {
  try {
    await p;
    return undefined;
  } catch (error) {
    if (error instanceof RestError) return error.statusCode;
    throw error;
  }
}

describe("Azurite (started by vitest globalSetup)", () => {
  it("listens on loopback ephemeral ports with the dev account", () => {
    expect(connectionString).toMatch(/TableEndpoint=http:\/\/127\.0\.0\.1:\d+\/devstoreaccount1;/);
  });

  it("rejects a write with a stale ETag (412) and accepts the current one", async () => {
    const table = await freshTable();
    await table.createEntity({ partitionKey: "pool", rowKey: "node-1", status: "Enrolling" });
    const first = await table.getEntity<{ status: string }>("pool", "node-1");
    const updated = await table.updateEntity({ partitionKey: "pool", rowKey: "node-1", status: "Onboarding" }, "Merge", { etag: first.etag });
    expect(updated.etag).not.toBe(first.etag);

    expect(await statusOf(table.updateEntity({ partitionKey: "pool", rowKey: "node-1", status: "Failed" }, "Merge", { etag: first.etag }))).toBe(412);
    expect(await statusOf(table.deleteEntity("pool", "node-1", { etag: first.etag }))).toBe(412);
    expect((await table.getEntity<{ status: string }>("pool", "node-1")).status).toBe("Onboarding");
  });

  it("rejects a duplicate insert (409) and leaves the first entity untouched", async () => {
    const table = await freshTable();
    await table.createEntity({ partitionKey: "tokens", rowKey: "hash-1", uses: 0 });
    expect(await statusOf(table.createEntity({ partitionKey: "tokens", rowKey: "hash-1", uses: 99 }))).toBe(409);
    expect((await table.getEntity<{ uses: number }>("tokens", "hash-1")).uses).toBe(0);
  });

  it("lets exactly one of many concurrent ETag-guarded updates win", async () => {
    const table = await freshTable();
    await table.createEntity({ partitionKey: "tokens", rowKey: "single-use", uses: 0 });
    const { etag } = await table.getEntity("tokens", "single-use");
    const outcomes = await Promise.all(
      Array.from({ length: 20 }, (_, i) => statusOf(table.updateEntity({ partitionKey: "tokens", rowKey: "single-use", uses: 1, by: i }, "Merge", { etag }))),
    );
    expect(outcomes.filter((s) => s === undefined)).toHaveLength(1);
    expect(outcomes.filter((s) => s === 412)).toHaveLength(19);
  });
});
