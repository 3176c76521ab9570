/**
 * Nodes enrolled into a pool whose `maxInFlight` slots are all taken: each is admitted (201), its saga prepares the
 * Azure side at once (mailbox, Arc machine, grants) and waits for a slot (phase awaitSlot) before the node side
 * (bootstrap token, node steps, Ready). A node that frees a slot hands it to the longest-waiting node in the same
 * transaction and its activity wakes that node's saga; the saga also looks on its own (timing.slotPoll), which
 * catches a limit raised meanwhile, and gives up after its last look with SlotWaitExpired, removing what it created.
 */
import { inject } from "vitest";
import { afterEach, describe, expect, it } from "vitest";
import { Registry } from "../../orchestrations/clients/registry/registry.js";
import { PRODUCTION_TIMING } from "../../orchestrations/onboard/timing.js";
import { admin } from "../function-app/index.js";
import { startWorld, type World } from "./world.js";

let world: World | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});

const registry = (w: World) => new Registry({ connectionString: inject("azuriteConnectionString"), prefix: w.app.prefix });

/** The emulated times an activity of the node's onboarding started and finished, in order. */
function calls(w: World, nodeId: string, name: string) {
  return w.app.simulator.activityLog.filter((c) => c.instanceId === nodeId && c.name === name);
}
const firstStart = (w: World, nodeId: string, name: string) => calls(w, nodeId, name)[0]!.startedAt;
/** Where an activity call stands in the order activities finished (the emulated clock does not move while they run). */
const order = (w: World, call: object) => w.app.simulator.activityLog.indexOf(call as never);
const lastFinish = (w: World, nodeId: string, name: string) => calls(w, nodeId, name).at(-1)!.finishedAt;

/** Where the node side ran: from its bootstrap token to its Ready. */
const nodeSide = (w: World, nodeId: string) => ({
  from: firstStart(w, nodeId, "onboard_issueBootstrapToken"),
  to: lastFinish(w, nodeId, "onboard_markReady"),
});

describe("a pool with every slot taken", () => {
  it("admits the next nodes, prepares their Azure side at once, and starts each node side when a slot is handed on, not at its next look", async () => {
    world = await startWorld({ poolSpec: { maxInFlight: 1 } });
    const a = await world.enrol();
    const b = await world.enrol();
    const c = await world.enrol();
    const pool = await registry(world).pools.get("edge");
    expect([pool!.inFlight, pool!.waiting]).toEqual([1, 2]);

    for (const n of [a, b, c]) expect((await world.settle(n.nodeId)).output).toEqual({ status: "Ready" });

    // The Azure side of b and c ran while a held the slot: their machines and grants were written before a's first step.
    const aFirstStep = order(world, calls(world, a.nodeId, "onboard_sendStep")[0]!);
    for (const n of [b, c]) {
      expect(order(world, calls(world, n.nodeId, "onboard_putArcMachine")[0]!)).toBeLessThan(aFirstStep);
      for (const grant of calls(world, n.nodeId, "onboard_grantRole")) expect(order(world, grant)).toBeLessThan(aFirstStep);
      // Their first look found no slot.
      expect(calls(world, n.nodeId, "onboard_takeSlot")[0]!.result).toBe(false);
    }
    // One node side at a time, in the order the nodes came.
    const sides = [a, b, c].map((n) => nodeSide(world!, n.nodeId));
    expect(sides[1]!.from).toBeGreaterThanOrEqual(sides[0]!.to);
    expect(sides[2]!.from).toBeGreaterThanOrEqual(sides[1]!.to);
    // Woken by the handoff: well before the first look would have come (30 s after the wait began).
    expect(sides[1]!.from - sides[0]!.to).toBeLessThan(PRODUCTION_TIMING.slotPoll.firstIntervalMs / 10);
    expect(sides[2]!.from - sides[1]!.to).toBeLessThan(PRODUCTION_TIMING.slotPoll.firstIntervalMs / 10);
    // The agent of a waiting node heard nothing before its node side began.
    expect(b.agent.seen.length).toBeGreaterThan(0);

    const after = await registry(world).pools.get("edge");
    expect([after!.inFlight, after!.waiting]).toEqual([0, 0]);
    // The wait's end is recorded for the sweeper (its deadline counts from there), only for nodes that waited.
    expect((await registry(world).nodes.get(b.nodeId))!.slotSince).toBeDefined();
    expect((await registry(world).nodes.get(a.nodeId))!.slotSince).toBeUndefined();
  });

  it("is woken to take a new slot when an admin raises maxInFlight (longest-waiting first, as many as the limit grew)", async () => {
    world = await startWorld({ poolSpec: { maxInFlight: 1 } });
    // a holds the slot and never answers its first step: it keeps the slot for as long as this test looks.
    const a = await world.enrol({ script: (e) => (e.stepId === "preflight" ? "silent" : "succeed") });
    const b = await world.enrol();
    const c = await world.enrol();
    await world.app.simulator.runUntilIdle();
    for (const n of [b, c]) expect(calls(world!, n.nodeId, "onboard_takeSlot").map((t) => t.result)).toEqual([false]);

    const pool = await world.app.call("GET", "/api/manage/pools/edge", { headers: admin });
    const { name: _n, inFlight: _i, waiting: _w, createdAt: _c, updatedAt: _u, etag, ...spec } = pool.json as Record<string, unknown>;
    const put = await world.app.call("PUT", "/api/manage/pools/edge", {
      headers: { ...admin, "if-match": etag as string },
      body: { ...spec, maxInFlight: 2 },
    });
    expect(put.status).toBe(200);

    // Woken by the update at once (no emulated time passes here), not found at its next look a minute on.
    await world.app.simulator.runUntilIdle();
    expect(calls(world, b.nodeId, "onboard_takeSlot").map((t) => t.result)).toEqual([false, true]);
    // c, which came after b, was not woken: the limit grew by one; it still waits.
    expect(calls(world, c.nodeId, "onboard_takeSlot").map((t) => t.result)).toEqual([false]);
    expect((await registry(world).pools.get("edge"))!.waiting).toBe(1);

    expect((await world.settle(b.nodeId)).output).toEqual({ status: "Ready" });
    // a still holds its slot: b ran its node side beside it, as the raised limit allows.
    expect(world.app.simulator.getStatus(a.nodeId)?.runtimeStatus).toBe("Running");
    expect(calls(world, a.nodeId, "onboard_markReady")).toEqual([]);
  });

  it("gives up after its last look with SlotWaitExpired, and removes the Azure side it prepared", async () => {
    world = await startWorld({
      poolSpec: { maxInFlight: 1 },
      timing: { slotPoll: { firstIntervalMs: 1_000, maxIntervalMs: 2_000, attempts: 4 }, stepTimeoutScale: 100 },
    });
    const a = await world.enrol({ script: (e) => (e.stepId === "preflight" ? "silent" : "succeed") });
    const b = await world.enrol();
    const done = await world.settle(b.nodeId);
    expect(done.output).toMatchObject({ status: "Failed", error: { code: "SlotWaitExpired" }, remaining: [] });
    const looks = calls(world, b.nodeId, "onboard_takeSlot");
    expect(looks.map((t) => t.result)).toEqual([false, false, false, false]);
    expect(looks.slice(1).map((t, i) => t.startedAt - looks[i]!.finishedAt)).toEqual([1_000, 2_000, 2_000]);
    // b's machine and grants are gone; a's remain (its saga still runs).
    expect(world.arm.inspect.machines().map((m) => m.name)).toEqual([a.nodeId]);
    expect(world.arm.inspect.roleAssignments()).toHaveLength(2);
    const node = await registry(world).nodes.get(b.nodeId);
    expect(node!.status).toBe("Failed");
    const pool = await registry(world).pools.get("edge");
    expect([pool!.inFlight, pool!.waiting]).toEqual([1, 0]);
    // Its agent was asked to reset (compensation), never to run a node step.
    expect(b.agent.seen.map((s) => s.stepId)).toEqual(["reset"]);
  });
});
