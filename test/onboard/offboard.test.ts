import { inject } from "vitest";
import { afterEach, describe, expect, it } from "vitest";
import { Registry } from "../../orchestrations/clients/registry/registry.js";
import { admin, newNode } from "../function-app/index.js";
import { startWorld, type World } from "./world.js";

let world: World;
afterEach(async () => {
  await world.close();
});

const registry = () => new Registry({ connectionString: inject("azuriteConnectionString"), prefix: world.app.prefix });

function expectNothingLeft(w: World): void {
  expect(w.arm.inspect.machines()).toEqual([]);
  expect(w.arm.inspect.roleAssignments()).toEqual([]);
  expect(w.kube.inspect().nodes).toEqual([]);
  expect(w.kube.inspect().secrets.filter((s) => s.name.startsWith("bootstrap-token-"))).toEqual([]);
  expect(w.sb.inspect.queues().filter((q) => q.name.startsWith("node-fn-"))).toEqual([]);
}

describe("decommission → offboardNode", () => {
  it("resets the agent and removes everything a Ready node owned, keeping the audit trail", async () => {
    world = await startWorld();
    const { nodeId, agent } = await world.enrol();
    expect((await world.settle(nodeId)).output).toEqual({ status: "Ready" });

    const res = await world.app.call("POST", `/api/manage/nodes/${nodeId}/decommission`, { headers: admin });
    expect(res.status).toBe(202);
    expect(res.json).toEqual({ nodeId, instanceId: `${nodeId}:offboard` });
    // Asking again finds the same offboarding.
    expect((await world.app.call("POST", `/api/manage/nodes/${nodeId}/decommission`, { headers: admin })).json).toEqual({
      nodeId,
      instanceId: `${nodeId}:offboard`,
    });
    const done = await world.settle(`${nodeId}:offboard`);
    expect(done.output).toMatchObject({ remaining: [] });
    expect((done.output as { removed: string[] }).removed).toHaveLength(5);
    expect(agent.seen.at(-1)?.stepId).toBe("reset");
    expectNothingLeft(world);
    const node = (await registry().nodes.get(nodeId))!;
    expect(node).toMatchObject({ status: "Offboarded", createdObjects: [] });
    expect((await registry().pools.get("edge"))?.inFlight).toBe(0);
    const actions = (await registry().audit.list({ objectId: nodeId })).map((a) => a.action);
    expect(actions).toEqual(expect.arrayContaining(["node.enrol", "node.ready", "node.decommission", "node.offboarding", "node.offboarded"]));
  });

  it("stops an onboarding in flight and removes what it had made so far", async () => {
    world = await startWorld();
    const { nodeId } = await world.enrol({ script: (e) => (e.stepId === "container-runtime" ? "silent" : "succeed") });
    for (let i = 0; i < 200; i++) {
      await world.app.simulator.runUntilIdle();
      if ((world.app.simulator.getStatus(nodeId)?.customStatus as { step?: string } | null)?.step === "container-runtime") break;
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(world.arm.inspect.machines()).toHaveLength(1);
    expect((await world.app.call("POST", `/api/manage/nodes/${nodeId}/decommission`, { headers: admin })).status).toBe(202);
    await world.app.simulator.runUntilIdle();
    expect(world.app.simulator.getStatus(nodeId)?.runtimeStatus).toBe("Terminated");
    await world.settle(`${nodeId}:offboard`);
    expectNothingLeft(world);
    expect((await registry().nodes.get(nodeId))?.status).toBe("Offboarded");
  });
});

describe("clone policy replace → offboardNode of the replaced node", () => {
  it("offboards the node a clone with a new id replaces: agent reset, its objects removed, its slot freed", async () => {
    // A short Retry-After on the machine delete: the clone's own onboarding runs alongside, unanswered, and every
    // minute of emulated time spent waiting out ARM's 200 s is work for it too (machine-delete-lro.test.ts keeps 200 s).
    world = await startWorld({ poolSpec: { clonePolicy: "replace" }, machineDelete: { retryAfterSeconds: 5 } });
    const { nodeId, node, agent } = await world.enrol();
    expect((await world.settle(nodeId)).output).toEqual({ status: "Ready" });
    const owned = (await registry().nodes.get(nodeId))!.createdObjects;
    expect(owned).toHaveLength(5);

    // The same machine-id with another SMBIOS UUID and a fresh key: a new node id that replaces the old one.
    const clone = newNode({ machineId: node.facts.machineId });
    const res = await world.app.enrol(clone, await world.app.createToken("edge"));
    expect(res.status).toBe(201);
    const cloneId = (res.json as { nodeId: string }).nodeId;
    expect(cloneId).not.toBe(nodeId);

    const done = await world.settle(`${nodeId}:offboard`);
    expect(done.output).toMatchObject({ remaining: [] });
    expect(agent.seen.at(-1)?.stepId).toBe("reset");
    const old = (await registry().nodes.get(nodeId))!;
    expect(old).toMatchObject({ status: "Offboarded", createdObjects: [] });
    const mentions = (xs: unknown[]) => xs.filter((x) => JSON.stringify(x).includes(nodeId));
    expect(mentions(world.arm.inspect.machines())).toEqual([]);
    expect(mentions(world.arm.inspect.roleAssignments())).toEqual([]);
    expect(mentions(world.sb.inspect.queues())).toEqual([]);
    expect(mentions(world.kube.inspect().nodes)).toEqual([]);
    // Only the clone's onboarding may hold a slot now.
    const cloneStatus = (await registry().nodes.get(cloneId))!.status;
    expect((await registry().pools.get("edge"))?.inFlight).toBe(["Enrolling", "Onboarding"].includes(cloneStatus) ? 1 : 0);
    const actions = (await registry().audit.list({ objectId: nodeId })).map((a) => a.action);
    expect(actions).toEqual(expect.arrayContaining(["node.replaced", "node.offboarded"]));
  }, 60_000);
});
