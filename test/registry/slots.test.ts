/**
 * Pool slots (orchestrations/clients/registry/in-flight.ts): each in-flight node holds exactly one slot row (or, when
 * none is free, one waiting row), taken and freed in the node's own transaction; concurrent creates never take more
 * slots than the pool has and nobody is refused; a freed slot goes to an offboarding over the limit, then to the
 * longest-waiting node; a waiting node takes a slot the limit frees; a slot no node holds is reclaimed; enrolment
 * nonces are insert-only and purged once expired.
 */
import { TableClient } from "@azure/data-tables";
import { describe, expect, inject, it } from "vitest";
import { isWaiting, overflowRow, waitingRow } from "../../orchestrations/clients/registry/in-flight.js";
import type { NodeRecord, NodeStatus } from "../../orchestrations/clients/registry/model.js";
import type { Registry } from "../../orchestrations/clients/registry/registry.js";
import { collectHandoffs, type SlotHandoff } from "../../orchestrations/clients/registry/slot-handoffs.js";
import { freshRegistry, newNodeInput as node, poolSpec, recordingRegistry } from "./fixtures.js";

const nodesTable = (prefix: string) => TableClient.fromConnectionString(inject("azuriteConnectionString"), `${prefix}nodes`, { allowInsecureConnection: true });
const slotRows = async (prefix: string, pool: string) => {
  const rows: { rowKey: string; nodeId: string }[] = [];
  const filter = `PartitionKey eq '${pool}' and RowKey ge 'slot:' and RowKey lt 'slot;'`;
  for await (const e of nodesTable(prefix).listEntities<{ nodeId: string }>({ queryOptions: { filter } })) rows.push({ rowKey: e.rowKey!, nodeId: e.nodeId });
  return rows;
};
const counts = async (registry: Registry) => {
  const pool = (await registry.pools.get("edge"))!;
  return { inFlight: pool.inFlight, waiting: pool.waiting };
};

/** Moves a node to `status`; the nodes a freed slot was handed to on the way (in-pool "edge"). */
async function moveNode(registry: Registry, nodeId: string, status: NodeStatus): Promise<string[]> {
  const current = (await registry.nodes.get(nodeId))!;
  const handoffs: SlotHandoff[] = [];
  await collectHandoffs(handoffs, () => registry.nodes.update(current, () => ({ status }), "test", "test.move"));
  expect(handoffs.every((h) => h.pool === current.pool)).toBe(true);
  return handoffs.map((h) => h.nodeId);
}

/**
 * A fresh registry whose clock the test moves (`later`: one second on, so each waiting node arrives at a time of its
 * own), with pool "edge" at `maxInFlight`, and its slot rows as row → node.
 */
async function clockedPool(maxInFlight: number) {
  let now = new Date("2025-01-01T00:00:00Z");
  const { registry, prefix } = await freshRegistry(() => now);
  await registry.pools.create("edge", poolSpec({ maxInFlight }), "alice");
  return {
    registry,
    clock: () => now,
    later: () => (now = new Date(now.getTime() + 1000)),
    rowsNow: async () => Object.fromEntries((await slotRows(prefix, "edge")).map((r) => [r.rowKey, r.nodeId])),
  };
}

describe("pool slots", () => {
  it("never hands out more slots than the pool has under 40 concurrent creates: each winner holds its own, the rest wait one row each", async () => {
    const { registry, prefix } = await freshRegistry();
    await registry.pools.create("edge", poolSpec({ maxInFlight: 4 }), "alice");
    const outcomes = await Promise.allSettled(Array.from({ length: 40 }, (_, i) => registry.nodes.create(node("edge", `n${i}`), "test")));
    // Nobody is refused for capacity.
    expect(outcomes.filter((o) => o.status === "rejected").map((o) => (o as PromiseRejectedResult).reason)).toEqual([]);
    const created = outcomes.map((o) => (o as PromiseFulfilledResult<NodeRecord>).value);
    const holders = created.filter((n) => !isWaiting(n.slot));
    const waiters = created.filter((n) => isWaiting(n.slot));
    expect(holders.map((n) => n.slot).sort()).toEqual(["slot:0", "slot:1", "slot:2", "slot:3"]);
    expect(waiters).toHaveLength(36);
    for (const n of waiters) expect(n.slot).toMatch(new RegExp(`^slot:~w:\\d{15}:${n.nodeId}$`));
    // The table agrees: 40 rows, one per node, each naming the node whose row names it.
    const rows = await slotRows(prefix, "edge");
    expect(rows).toHaveLength(40);
    expect(new Set(rows.map((r) => r.nodeId)).size).toBe(40);
    expect(
      rows
        .filter((r) => !isWaiting(r.rowKey))
        .map((r) => r.rowKey)
        .sort(),
    ).toEqual(["slot:0", "slot:1", "slot:2", "slot:3"]);
    const byNode = new Map(rows.map((r) => [r.nodeId, r.rowKey]));
    for (const n of created) {
      expect(byNode.get(n.nodeId)).toBe(n.slot);
      expect((await registry.nodes.get(n.nodeId))!.slot).toBe(n.slot);
    }
    expect(await counts(registry)).toEqual({ inFlight: 4, waiting: 36 });
  });

  it("takes no slot its own process is taking or took: 8 concurrent creates fill a pool of 8 with no conflict and no listing", async () => {
    // A slot conflict always ends in a slot listing.
    const { registry, sent, prefix } = await recordingRegistry();
    await registry.pools.create("edge", poolSpec({ maxInFlight: 8 }), "alice");
    sent.length = 0;
    // Eight ids over eight slots: their hashes collide (n0…n7 do), so without the process's memory some would conflict.
    const created = await Promise.all(Array.from({ length: 8 }, (_, i) => registry.nodes.create(node("edge", `n${i}`), "test")));
    expect(new Set(created.map((n) => n.slot)).size).toBe(8);
    expect(created.filter((n) => isWaiting(n.slot))).toEqual([]);
    expect(sent.filter((r) => r.includes("RowKey ge 'slot:'"))).toEqual([]);
    // Full: the ninth is sent to wait by the service (a conflict, then a listing, then its waiting row), not by the memory.
    sent.length = 0;
    const ninth = await registry.nodes.create(node("edge", "n8"), "test");
    expect(ninth.slot).toMatch(/^slot:~w:\d{15}:n8$/);
    // The pool's limit; the key's index entry; the node with the slot its hash picked (409, taken); the listing; the
    // node with its waiting row; its audit row.
    const kinds = sent.map((r) =>
      r.includes("RowKey ge 'slot:'")
        ? "slot listing"
        : r.endsWith("/$batch")
          ? "transaction"
          : r.endsWith(`/${prefix}audit`)
            ? "audit"
            : r.startsWith(`GET `) && r.includes(`/${prefix}pools(`)
              ? "pool read"
              : r,
    );
    // It saw the pool full (its own takes, just now): straight to a waiting row, no probe and no listing.
    expect(kinds).toEqual(["pool read", "transaction", "transaction", "audit"]);
    expect(await counts(registry)).toEqual({ inFlight: 8, waiting: 1 });
  });

  it("reclaims a slot row no node holds, and leaves held ones and waiting ones", async () => {
    const { registry, prefix } = await freshRegistry();
    await registry.pools.create("edge", poolSpec({ maxInFlight: 2 }), "alice");
    const held = await registry.nodes.create(node("edge", "n1"), "test");
    const stray = held.slot === "slot:0" ? "slot:1" : "slot:0";
    // A slot whose node is gone: the pool looks full until the sweeper frees it, so the next node waits.
    await nodesTable(prefix).createEntity({ partitionKey: "edge", rowKey: stray, nodeId: "gone" });
    const n2 = await registry.nodes.create(node("edge", "n2"), "test");
    expect(isWaiting(n2.slot)).toBe(true);
    // A waiting row whose node is gone is no one's place in the queue either.
    const strayWaiting = waitingRow(new Date("2025-01-01T00:00:00Z"), "gone-too");
    await nodesTable(prefix).createEntity({ partitionKey: "edge", rowKey: strayWaiting, nodeId: "gone-too" });
    expect(await counts(registry)).toEqual({ inFlight: 2, waiting: 2 });
    expect((await registry.nodes.reclaimSlots("edge")).sort()).toEqual([stray, strayWaiting].sort());
    expect(await counts(registry)).toEqual({ inFlight: 1, waiting: 1 });
    expect(await slotRows(prefix, "edge")).toEqual([
      { rowKey: held.slot, nodeId: "n1" },
      { rowKey: n2.slot, nodeId: "n2" },
    ]);
    // Reclaiming hands nothing on: the waiting node takes the freed slot when its saga next looks.
    expect(await registry.nodes.takeSlot({ pool: "edge", nodeId: "n2" }, { waited: true, at: "2025-01-01T00:00:00.000Z" })).toBe(true);
    expect((await registry.nodes.get("n2"))!).toMatchObject({ slot: stray, slotSince: "2025-01-01T00:00:00.000Z" });
    expect(await counts(registry)).toEqual({ inFlight: 2, waiting: 0 });
    expect(await registry.nodes.reclaimSlots("edge")).toEqual([]);
  });

  it("hands a freed slot to the offboarding over the limit first, then to the waiting nodes in the order they arrived", async () => {
    // A clock the test moves: each waiting node arrives at a time of its own.
    const { registry, clock, later, rowsNow } = await clockedPool(2);
    const move = (nodeId: string, status: NodeStatus) => moveNode(registry, nodeId, status);
    const slotOf = async (nodeId: string) => (await registry.nodes.get(nodeId))!.slot;
    // o1 onboards alone and is Ready; h1 and h2 then hold both slots.
    await registry.nodes.create(node("edge", "o1"), "test");
    expect(await move("o1", "Ready")).toEqual([]);
    const h1 = await registry.nodes.create(node("edge", "h1"), "test");
    const h2 = await registry.nodes.create(node("edge", "h2"), "test");
    expect([h1.slot, h2.slot].sort()).toEqual(["slot:0", "slot:1"]);
    // Three nodes wait, arriving in an order that is not their ids' order.
    const arrived: Record<string, string> = {};
    for (const id of ["q3", "q1", "q2"]) {
      later();
      const waiter = await registry.nodes.create(node("edge", id), "test");
      expect(waiter.slot).toBe(waitingRow(clock(), id));
      arrived[id] = waiter.slot!;
    }
    // o1 offboards after them all, over the limit (an overflow row, in flight).
    later();
    await move("o1", "Offboarding");
    expect(await slotOf("o1")).toBe(overflowRow("o1"));
    expect(await counts(registry)).toEqual({ inFlight: 3, waiting: 3 });
    expect(await rowsNow()).toEqual({
      [h1.slot!]: "h1",
      [h2.slot!]: "h2",
      [overflowRow("o1")]: "o1",
      [arrived.q3!]: "q3",
      [arrived.q1!]: "q1",
      [arrived.q2!]: "q2",
    });

    // h1 leaves: its slot goes to o1, which runs over the limit, before any node that waits.
    // (No saga to wake: an offboarding runs already.)
    expect(await move("h1", "Ready")).toEqual([]);
    expect(await slotOf("o1")).toBe(h1.slot);
    expect(await slotOf("h1")).toBeUndefined();
    expect(await counts(registry)).toEqual({ inFlight: 2, waiting: 3 });
    expect(await rowsNow()).toEqual({ [h1.slot!]: "o1", [h2.slot!]: "h2", [arrived.q3!]: "q3", [arrived.q1!]: "q1", [arrived.q2!]: "q2" });
    // Then the longest-waiting node first: q3, q1, q2, whichever way the slot was freed.
    expect(await move("h2", "Ready")).toEqual(["q3"]);
    expect(await slotOf("q3")).toBe(h2.slot);
    expect(await counts(registry)).toEqual({ inFlight: 2, waiting: 2 });
    expect(await move("o1", "Offboarded")).toEqual(["q1"]);
    expect(await slotOf("q1")).toBe(h1.slot);
    expect(await counts(registry)).toEqual({ inFlight: 2, waiting: 1 });
    expect(await move("q3", "Failed")).toEqual(["q2"]);
    expect(await slotOf("q2")).toBe(h2.slot);
    expect(await rowsNow()).toEqual({ [h1.slot!]: "q1", [h2.slot!]: "q2" });
    expect(await counts(registry)).toEqual({ inFlight: 2, waiting: 0 });
    // With no one waiting, a freed slot is simply free.
    expect(await move("q1", "Ready")).toEqual([]);
    expect(await rowsNow()).toEqual({ [h2.slot!]: "q2" });
    expect(await counts(registry)).toEqual({ inFlight: 1, waiting: 0 });
  });

  it("moves a waiting node that starts offboarding out of the queue: onto a free slot, or over the limit ahead of the waiters", async () => {
    const { registry, later, rowsNow } = await clockedPool(1);
    const move = (nodeId: string, status: NodeStatus) => moveNode(registry, nodeId, status);
    const h1 = await registry.nodes.create(node("edge", "h1"), "test");
    later();
    const w0 = await registry.nodes.create(node("edge", "w0"), "test");
    later();
    const w1 = await registry.nodes.create(node("edge", "w1"), "test");
    expect([isWaiting(w0.slot), isWaiting(w1.slot)]).toEqual([true, true]);

    // w1 is decommissioned while it waits: it offboards at once, over the limit, and no longer waits.
    await move("w1", "Offboarding");
    expect((await registry.nodes.get("w1"))!.slot).toBe(overflowRow("w1"));
    expect(await rowsNow()).toEqual({ [h1.slot!]: "h1", [w0.slot!]: "w0", [overflowRow("w1")]: "w1" });
    expect(await counts(registry)).toEqual({ inFlight: 2, waiting: 1 });
    // The next slot freed goes to the offboarding, though w0 has waited longer.
    expect(await move("h1", "Ready")).toEqual([]);
    expect(await rowsNow()).toEqual({ [h1.slot!]: "w1", [w0.slot!]: "w0" });
    expect(await move("w1", "Offboarded")).toEqual(["w0"]);
    expect(await rowsNow()).toEqual({ [h1.slot!]: "w0" });

    // With a slot free (the limit raised while it waited), a waiting node that starts offboarding takes it.
    later();
    const w3 = await registry.nodes.create(node("edge", "w3"), "test");
    expect(isWaiting(w3.slot)).toBe(true);
    await registry.pools.update("edge", poolSpec({ maxInFlight: 2 }), "alice");
    expect(await move("w3", "Offboarding")).toEqual([]);
    expect((await registry.nodes.get("w3"))!.slot).toMatch(/^slot:\d+$/);
    expect(await counts(registry)).toEqual({ inFlight: 2, waiting: 0 });
    expect(Object.values(await rowsNow()).sort()).toEqual(["w0", "w3"]);
  });

  it("drains a pool whose maxInFlight was lowered while nodes wait: a slot at or above the new limit goes to nobody", async () => {
    const { registry, clock, later, rowsNow } = await clockedPool(3);
    const holders = [];
    for (const id of ["h0", "h1", "h2"]) holders.push(await registry.nodes.create(node("edge", id), "test"));
    const bySlot = Object.fromEntries(holders.map((h) => [h.slot!, h.nodeId]));
    for (const id of ["w0", "w1"]) {
      later();
      expect(isWaiting((await registry.nodes.create(node("edge", id), "test")).slot)).toBe(true);
    }
    await registry.pools.update("edge", poolSpec({ maxInFlight: 1 }), "alice");

    // Slots 2 and 1 free up: above the new limit, they go to nobody.
    expect(await moveNode(registry, bySlot["slot:2"]!, "Ready")).toEqual([]);
    expect(await moveNode(registry, bySlot["slot:1"]!, "Ready")).toEqual([]);
    expect(await counts(registry)).toEqual({ inFlight: 1, waiting: 2 });
    // Slot 0 is within it: the longest-waiting node takes it, with when it did.
    expect(await moveNode(registry, bySlot["slot:0"]!, "Ready")).toEqual(["w0"]);
    const w0 = (await registry.nodes.get("w0"))!;
    expect([w0.slot, w0.slotSince]).toEqual(["slot:0", clock().toISOString()]);
    expect(await rowsNow()).toEqual({
      "slot:0": "w0",
      [waitingRow(new Date(Date.parse("2025-01-01T00:00:02Z")), "w1")]: "w1",
    });
  });

  it("takeSlot moves a waiting node onto a slot once maxInFlight is raised, and writes nothing while none is free", async () => {
    const { registry, sent, prefix } = await recordingRegistry();
    const created = await registry.pools.create("edge", poolSpec({ maxInFlight: 1 }), "alice");
    const h1 = await registry.nodes.create(node("edge", "h1"), "test");
    const w1 = await registry.nodes.create(node("edge", "w1"), "test");
    const parked = await registry.nodes.create(node("edge", "a1", "AwaitingApproval"), "test");
    expect(h1.slot).toBe("slot:0");
    expect(isWaiting(w1.slot)).toBe(true);
    const take = (nodeId: string, waited: boolean, at = "2025-01-01T00:05:00.000Z") => registry.nodes.takeSlot({ pool: "edge", nodeId }, { waited, at });
    // The holder holds; the waiting node still waits, and nothing is written for it; a parked node is not in flight.
    sent.length = 0;
    expect(await take("h1", false)).toBe(true);
    expect(await take("w1", true)).toBe(false);
    expect(await take("w1", false)).toBe(false);
    expect(await take("a1", false)).toBe(false);
    expect(sent.filter((r) => !r.startsWith("GET "))).toEqual([]);
    expect((await registry.nodes.get("w1"))!).toMatchObject({ slot: w1.slot, etag: w1.etag });
    expect((await registry.nodes.get("w1"))!.slotSince).toBeUndefined();
    expect((await registry.nodes.get("a1"))!.etag).toBe(parked.etag);
    expect(await slotRows(prefix, "edge")).toEqual([
      { rowKey: "slot:0", nodeId: "h1" },
      { rowKey: w1.slot, nodeId: "w1" },
    ]);

    // Raised to 2: the waiting node takes slot:1 (the only free one below the limit), its waiting row goes, and its
    // wait ends at the time its saga gave.
    await registry.pools.update("edge", poolSpec({ maxInFlight: 2 }), "alice", created.etag);
    expect(await take("w1", true)).toBe(true);
    const promoted = (await registry.nodes.get("w1"))!;
    expect(promoted).toMatchObject({ status: "Enrolling", slot: "slot:1", slotSince: "2025-01-01T00:05:00.000Z" });
    expect(await slotRows(prefix, "edge")).toEqual([
      { rowKey: "slot:0", nodeId: "h1" },
      { rowKey: "slot:1", nodeId: "w1" },
    ]);
    expect(await counts(registry)).toEqual({ inFlight: 2, waiting: 0 });
    // Asked again (a replay), it holds the slot and nothing is written; a node no longer in flight holds none.
    sent.length = 0;
    expect(await take("w1", true)).toBe(true);
    expect(await take("w1", false)).toBe(true);
    expect(sent.filter((r) => !r.startsWith("GET "))).toEqual([]);
    expect((await registry.nodes.get("w1"))!.etag).toBe(promoted.etag);
    await registry.nodes.update((await registry.nodes.get("h1"))!, () => ({ status: "Ready" }), "test", "test.ready");
    expect(await take("h1", false)).toBe(false);
    expect(await slotRows(prefix, "edge")).toEqual([{ rowKey: "slot:1", nodeId: "w1" }]);
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
