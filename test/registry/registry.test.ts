import { describe, expect, it } from "vitest";
import { RegistryError } from "../../orchestrations/clients/registry/registry.js";
import { facts, freshRegistry, poolSpec } from "./fixtures.js";

const node = (pool: string, nodeId: string, status: "Enrolling" | "AwaitingApproval" = "Enrolling") => {
  const f = facts();
  return {
    nodeId,
    pool,
    status,
    facts: f,
    publicKey: "k".repeat(43),
    keyId: `kid-${nodeId}`,
    fingerprint: { machineId: f.machineId, smbiosUuid: f.smbiosUuid },
    tokenId: "0123456789abcdef",
    labels: {},
    taints: [],
    createdObjects: [],
  };
};

describe("registry on Azurite", () => {
  it("creates, reads and updates a pool under its ETag", async () => {
    const { registry } = await freshRegistry();
    const created = await registry.createPool("edge", poolSpec({ maxInFlight: 2 }), "alice");
    expect(created).toMatchObject({ name: "edge", maxInFlight: 2, inFlight: 0, clonePolicy: "reject" });
    await expect(registry.createPool("edge", poolSpec(), "alice")).rejects.toMatchObject({ code: "PoolExists" });

    const updated = await registry.updatePool("edge", poolSpec({ maxInFlight: 5 }), "bob", created.etag);
    expect(updated.maxInFlight).toBe(5);
    // A writer holding the old ETag loses.
    await expect(registry.updatePool("edge", poolSpec({ maxInFlight: 9 }), "carol", created.etag)).rejects.toMatchObject({ code: "Conflict" });
    expect((await registry.getPool("edge"))?.maxInFlight).toBe(5);
    expect((await registry.listAudit()).map((a) => a.action).sort()).toEqual(["pool.create", "pool.update"]);
  });

  it("counts in-flight nodes in the same transaction that creates or moves them", async () => {
    const { registry } = await freshRegistry();
    await registry.createPool("edge", poolSpec({ maxInFlight: 2 }), "alice");
    await registry.createNode(node("edge", "n1"), "test");
    await registry.createNode(node("edge", "n2"), "test");
    await expect(registry.createNode(node("edge", "n3"), "test")).rejects.toMatchObject({ code: "PoolFull" });
    // Waiting for approval takes no slot.
    await registry.createNode(node("edge", "n4", "AwaitingApproval"), "test");
    expect((await registry.getPool("edge"))?.inFlight).toBe(2);
    await expect(registry.createNode(node("edge", "n1"), "test")).rejects.toMatchObject({ code: "NodeExists" });

    const n1 = (await registry.getNode("n1"))!;
    await registry.updateNode(n1, () => ({ status: "Ready" }), "saga", "node.ready");
    expect((await registry.getPool("edge"))?.inFlight).toBe(1);
    const n4 = (await registry.getNode("n4"))!;
    await registry.updateNode(n4, () => ({ status: "Enrolling" }), "alice", "node.approve");
    expect((await registry.getPool("edge"))?.inFlight).toBe(2);
    // A full pool refuses more onboarding, but never offboarding: that frees resources.
    await expect(registry.updateNode((await registry.getNode("n1"))!, () => ({ status: "Enrolling" }), "x", "node.reenrol")).rejects.toMatchObject({ code: "PoolFull" });
    expect(RegistryError).toBeDefined();
    await registry.updateNode((await registry.getNode("n1"))!, () => ({ status: "Offboarding" }), "x", "node.offboarding");
    expect((await registry.getPool("edge"))?.inFlight).toBe(3);
  });

  it("keeps the counter exact when many writers move nodes at once", async () => {
    const { registry } = await freshRegistry();
    await registry.createPool("edge", poolSpec({ maxInFlight: 1000 }), "alice");
    const ids = Array.from({ length: 12 }, (_, i) => `c${i}`);
    await Promise.all(ids.map((id) => registry.createNode(node("edge", id), "test")));
    expect((await registry.getPool("edge"))?.inFlight).toBe(12);
    await Promise.all(ids.slice(0, 7).map(async (id) => registry.updateNode((await registry.getNode(id))!, () => ({ status: "Ready" }), "saga", "node.ready")));
    expect((await registry.getPool("edge"))?.inFlight).toBe(5);
  });

  it("lets exactly one of two concurrent creates of the same node win, and counts it once", async () => {
    const { registry } = await freshRegistry();
    await registry.createPool("edge", poolSpec({ maxInFlight: 10 }), "alice");
    const outcomes = await Promise.allSettled(Array.from({ length: 4 }, () => registry.createNode(node("edge", "twin"), "test")));
    expect(outcomes.filter((o) => o.status === "fulfilled")).toHaveLength(1);
    for (const o of outcomes.filter((o) => o.status === "rejected")) expect((o as PromiseRejectedResult).reason).toMatchObject({ code: "NodeExists" });
    expect((await registry.getPool("edge"))?.inFlight).toBe(1);
  });

  it("pages nodes with a continuation token and filters by status", async () => {
    const { registry } = await freshRegistry();
    await registry.createPool("edge", poolSpec(), "alice");
    for (let i = 0; i < 5; i++) await registry.createNode(node("edge", `p${i}`, i % 2 ? "AwaitingApproval" : "Enrolling"), "test");
    const first = await registry.listNodes({ pool: "edge", maxPageSize: 2 });
    expect(first.items).toHaveLength(2);
    expect(first.continuationToken).toBeDefined();
    const rest = await registry.listNodes({ pool: "edge", maxPageSize: 10, continuationToken: first.continuationToken });
    expect([...first.items, ...rest.items].map((n) => n.nodeId)).toEqual(["p0", "p1", "p2", "p3", "p4"]);
    expect((await registry.listNodes({ status: "AwaitingApproval" })).items.map((n) => n.nodeId)).toEqual(["p1", "p3"]);
  });
});
