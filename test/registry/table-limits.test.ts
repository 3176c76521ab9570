/**
 * The registry against the Table service's limit on one string property (32,768 UTF-16 units, 400
 * PropertyValueTooLarge on Azurite as on Azure): a valid pool spec whose audit entry would not fit, a spec that cannot
 * be stored at all, and a group-committed transaction with one row the service refuses beside innocent ones.
 */
import { createHash } from "node:crypto";
import { TableClient } from "@azure/data-tables";
import { describe, expect, inject, it } from "vitest";
import { boundDetails } from "../../orchestrations/clients/registry/audit.js";
import { GroupInsert } from "../../orchestrations/clients/registry/group-insert.js";
import { PoolRowTooLarge } from "../../orchestrations/clients/registry/pools.js";
import { MAX_STRING_CHARS } from "../../orchestrations/clients/registry/table-rows.js";
import { poolSpecStorageIssues } from "../../orchestrations/use-cases/pool-spec-budget.js";
import { freshRegistry, poolSpec, uniquePrefix } from "./fixtures.js";

/** A label key of the longest kind: a 253-character DNS prefix and a 63-character name. */
const longKey = (i: number) =>
  `${"a".repeat(60)}.${"b".repeat(60)}.${"c".repeat(60)}.${"d".repeat(55)}${String(i).padStart(4, "0")}.io/${"n".repeat(59)}${String(i).padStart(4, "0")}`;
/** The largest spec the schema allows for labels and taints: 64 labels and 32 taints of the longest keys and values. */
const fullSpec = () =>
  poolSpec({
    nodeLabels: Object.fromEntries(Array.from({ length: 64 }, (_, i) => [longKey(i), "v".repeat(63)])),
    nodeTaints: Array.from({ length: 32 }, (_, i) => ({ key: longKey(100 + i), value: "v".repeat(63), effect: "NoSchedule" })),
  });
/** 47 Arc tags (ARM's 50 less the service's 3) of the longest names and values ARM takes: ~36,000 characters as JSON. */
const longTags = () => Object.fromEntries(Array.from({ length: 47 }, (_, i) => [`${String(i).padStart(3, "0")}${"t".repeat(509)}`, "v".repeat(256)]));
const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");

describe("audit details within one property", () => {
  it("keeps details that fit as they are", () => {
    const details = { spec: poolSpec(), n: 1 };
    expect(boundDetails(details)).toBe(details);
  });

  it("keeps the small fields of a spec too long to store and a digest and length of the large ones", () => {
    const spec = fullSpec();
    expect(JSON.stringify({ spec }).length).toBeGreaterThan(MAX_STRING_CHARS);
    const bounded = boundDetails({ spec }) as { spec: Record<string, unknown> };
    expect(JSON.stringify(bounded).length).toBeLessThanOrEqual(MAX_STRING_CHARS);
    expect(bounded.spec).toMatchObject({ clusterResourceId: spec.clusterResourceId, arc: spec.arc, maxInFlight: spec.maxInFlight });
    // The largest field went first (the labels, whole: never half a label map); the taints then fit.
    const labels = JSON.stringify(spec.nodeLabels);
    expect(bounded.spec.nodeLabels).toEqual({ omitted: true, sha256: sha256(labels), chars: labels.length });
    expect(bounded.spec.nodeTaints).toEqual(spec.nodeTaints);
  });

  it("digests a value too long even alone", () => {
    const big = "x".repeat(40_000);
    expect(boundDetails({ big, small: "s" })).toEqual({ big: { omitted: true, sha256: sha256(JSON.stringify(big)), chars: 40_002 }, small: "s" });
  });
});

describe("pools whose spec is valid but long, on Azurite", () => {
  it("creates and updates a pool of 64 labels and 32 taints: the pool stored whole, its audit entries bounded", async () => {
    const { registry } = await freshRegistry();
    const spec = fullSpec();
    const created = await registry.pools.create("big", spec, "admin");
    expect(created.nodeLabels).toEqual(spec.nodeLabels);
    expect(created.nodeTaints).toEqual(spec.nodeTaints);
    await registry.pools.update("big", { ...spec, maxInFlight: 7 }, "admin");
    const audit = await registry.audit.list({ objectId: "big" });
    expect(audit.map((a) => a.action).sort()).toEqual(["pool.create", "pool.update"]);
    for (const a of audit) expect(a.details).toMatchObject({ spec: { clusterResourceId: spec.clusterResourceId, nodeLabels: { omitted: true } } });
  });

  it("refuses a spec too long to store having written nothing, so the corrected spec then creates the pool", async () => {
    const { registry } = await freshRegistry();
    const spec = poolSpec({ arc: { resourceGroupId: poolSpec().arc.resourceGroupId, location: "eastus", tags: longTags() } });
    expect(poolSpecStorageIssues(spec)).toEqual([{ path: "/arc/tags", message: expect.stringMatching(/too long to store: \d+ characters as JSON/) }]);
    await expect(registry.pools.create("tags", spec, "admin")).rejects.toBeInstanceOf(PoolRowTooLarge);
    expect(await registry.pools.get("tags")).toBeUndefined();
    expect(await registry.audit.list({ objectId: "tags" })).toEqual([]);
    // Not "already exists": nothing was written.
    const fewer = poolSpec({ arc: { ...spec.arc, tags: Object.fromEntries(Object.entries(longTags()).slice(0, 40)) } });
    expect(poolSpecStorageIssues(fewer)).toEqual([]);
    await registry.pools.create("tags", fewer, "admin");
    await expect(registry.pools.update("tags", spec, "admin")).rejects.toBeInstanceOf(PoolRowTooLarge);
    expect(Object.keys((await registry.pools.get("tags"))!.arc.tags)).toHaveLength(40);
    expect((await registry.audit.list({ objectId: "tags" })).map((a) => a.action)).toEqual(["pool.create"]);
  });
});

describe("group insert with a row the service refuses", () => {
  async function grouped(): Promise<{ table: TableClient; inserts: GroupInsert; keys: () => Promise<string[]> }> {
    const table = TableClient.fromConnectionString(inject("azuriteConnectionString"), `${uniquePrefix()}grouped`, { allowInsecureConnection: true });
    await table.createTable();
    const keys = async () => {
      const out: string[] = [];
      for await (const e of table.listEntities()) out.push(e.rowKey!);
      return out.sort();
    };
    return { table, inserts: new GroupInsert(table), keys };
  }
  const outcome = (p: Promise<void>) =>
    p.then(
      () => "stored",
      (e: { statusCode?: number }) => `failed ${e.statusCode}`,
    );

  it("fails only the writer of an oversized row; the rows that shared its transaction are stored", async () => {
    const { inserts, keys } = await grouped();
    // The first goes alone; the next four wait for it and go together, the oversized third among them.
    const rows = [{}, {}, { big: "x".repeat(40_000) }, {}, {}].map((extra, i) => ({ partitionKey: "p", rowKey: `r${i}`, ...extra }));
    const results = await Promise.all(rows.map((r) => outcome(inserts.insert(r))));
    expect(results).toEqual(["stored", "stored", "failed 400", "stored", "stored"]);
    expect(await keys()).toEqual(["r0", "r1", "r3", "r4"]);
  });

  it("fails each refused writer and no other, however many share the transaction", async () => {
    const { table, inserts, keys } = await grouped();
    await table.createEntity({ partitionKey: "p", rowKey: "taken" });
    const rows = [
      { rowKey: "r0" },
      { rowKey: "taken" },
      { rowKey: "r2", big: "x".repeat(40_000) },
      { rowKey: "r3" },
      { rowKey: "r4", big: "y".repeat(40_000) },
      { rowKey: "r5" },
    ].map((r) => ({ partitionKey: "p", ...r }));
    const results = await Promise.all(rows.map((r) => outcome(inserts.insert(r))));
    expect(results).toEqual(["stored", "failed 409", "failed 400", "stored", "failed 400", "stored"]);
    expect(await keys()).toEqual(["r0", "r3", "r5", "taken"]);
  });

  it("stores an audit entry whose details are too long beside its concurrent neighbours (the reviewer's case)", async () => {
    const { registry } = await freshRegistry();
    const write = (id: string, details: Record<string, unknown>) =>
      outcome(registry.audit.write({ actor: "a", action: "x", objectType: "node", objectId: id, details }));
    const results = await Promise.all([write("first", {}), write("innocent-1", {}), write("oversized", { big: "x".repeat(40_000) }), write("innocent-2", {})]);
    expect(results).toEqual(["stored", "stored", "stored", "stored"]);
    const [oversized] = await registry.audit.list({ objectId: "oversized" });
    expect(oversized!.details).toMatchObject({ big: { omitted: true, chars: 40_002 } });
  });
});
