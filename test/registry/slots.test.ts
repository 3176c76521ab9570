/**
 * Pool slots (orchestrations/clients/registry/in-flight.ts): each in-flight node holds exactly one slot row, taken and
 * freed in the node's own transaction; concurrent creates never take more slots than the pool has; a slot no node
 * holds is reclaimed; enrolment nonces are insert-only and purged once expired.
 */
import { TableClient } from "@azure/data-tables";
import { describe, expect, inject, it } from "vitest";
import { freshRegistry, newNodeInput as node, poolSpec, recordingRegistry } from "./fixtures.js";

const nodesTable = (prefix: string) => TableClient.fromConnectionString(inject("azuriteConnectionString"), `${prefix}nodes`, { allowInsecureConnection: true });
const slotRows = async (prefix: string, pool: string) => {
  const rows: { rowKey: string; nodeId: string }[] = [];
  const filter = `PartitionKey eq '${pool}' and RowKey ge 'slot:' and RowKey lt 'slot;'`;
  for await (const e of nodesTable(prefix).listEntities<{ nodeId: string }>({ queryOptions: { filter } })) rows.push({ rowKey: e.rowKey!, nodeId: e.nodeId });
  return rows;
};

describe("pool slots", () => {
  it("never takes more slots than the pool has under 40 concurrent creates, and each winner holds its own", async () => {
    const { registry, prefix } = await freshRegistry();
    await registry.pools.create("edge", poolSpec({ maxInFlight: 4 }), "alice");
    const outcomes = await Promise.allSettled(Array.from({ length: 40 }, (_, i) => registry.nodes.create(node("edge", `n${i}`), "test")));
    const created = outcomes.filter((o) => o.status === "fulfilled").map((o) => o.value);
    expect(created).toHaveLength(4);
    for (const o of outcomes) if (o.status === "rejected") expect(o.reason).toMatchObject({ code: "PoolFull" });
    const rows = await slotRows(prefix, "edge");
    expect(rows.map((r) => r.nodeId).sort()).toEqual(created.map((n) => n.nodeId).sort());
    expect(rows.map((r) => r.rowKey).sort()).toEqual(created.map((n) => n.slot).sort());
  });

  it("takes no slot its own process is taking or took: 8 concurrent creates fill a pool of 8 with no conflict and no listing", async () => {
    // A slot conflict always ends in a slot listing.
    const { registry, sent } = await recordingRegistry();
    await registry.pools.create("edge", poolSpec({ maxInFlight: 8 }), "alice");
    sent.length = 0;
    // Eight ids over eight slots: their hashes collide (n0…n7 do), so without the process's memory some would conflict.
    const created = await Promise.all(Array.from({ length: 8 }, (_, i) => registry.nodes.create(node("edge", `n${i}`), "test")));
    expect(new Set(created.map((n) => n.slot)).size).toBe(8);
    expect(sent.filter((r) => r.includes("RowKey ge 'slot:'"))).toEqual([]);
    // Full: the ninth is refused by the service (a conflict, then a listing), not by the memory.
    await expect(registry.nodes.create(node("edge", "n8"), "test")).rejects.toMatchObject({ code: "PoolFull" });
    expect(sent.filter((r) => r.includes("RowKey ge 'slot:'"))).toHaveLength(1);
  });

  it("reclaims a slot row no node holds, and leaves held ones", async () => {
    const { registry, prefix } = await freshRegistry();
    await registry.pools.create("edge", poolSpec({ maxInFlight: 2 }), "alice");
    const held = await registry.nodes.create(node("edge", "n1"), "test");
    const stray = held.slot === "slot:0" ? "slot:1" : "slot:0";
    // A slot whose node is gone: the pool looks full until the sweeper frees it.
    await nodesTable(prefix).createEntity({ partitionKey: "edge", rowKey: stray, nodeId: "gone" });
    await expect(registry.nodes.create(node("edge", "n2"), "test")).rejects.toMatchObject({ code: "PoolFull" });
    expect(await registry.nodes.reclaimSlots("edge")).toEqual([stray]);
    expect((await registry.pools.get("edge"))!.inFlight).toBe(1);
    expect((await registry.nodes.create(node("edge", "n2"), "test")).slot).toBe(stray);
    expect(await registry.nodes.reclaimSlots("edge")).toEqual([]);
  });

  it("records an enrolment nonce once, and purges it after its expiry", async () => {
    let clock = new Date("2025-01-01T00:00:00Z");
    const { registry } = await freshRegistry(() => clock);
    const nonce = { keyId: "kid-1", nonce: "abc", expiresAt: new Date("2025-01-01T00:02:00Z") };
    await registry.nodes.claimNonce(nonce);
    await expect(registry.nodes.claimNonce(nonce)).rejects.toMatchObject({ code: "NonceUsed" });
    expect(await registry.purgeExpired(new Date(0))).toBe(0);
    clock = new Date("2025-01-01T00:03:00Z");
    expect(await registry.purgeExpired(new Date(0))).toBe(1);
    await registry.nodes.claimNonce(nonce);
  });
});
