import { inject } from "vitest";
import { afterEach, describe, expect, it } from "vitest";
import { ArmClients } from "../../orchestrations/clients/arm/arm-clients.js";
import { Registry } from "../../orchestrations/clients/registry/registry.js";
import { emulatorCredential, type ResourceEvent } from "../arm-emulator/index.js";
import { admin } from "../function-app/index.js";
import { ARC_RG_ID, CLUSTER_ID, startWorld, SUBSCRIPTION, type World } from "./world.js";
import { pathArg } from "../../orchestrations/clients/arm/resource-id.js";

let world: World;
afterEach(async () => {
  await world.close();
});

const OPERATOR = "0badc0de-0000-4000-8000-000000000001";
const deliver = (w: World, e: ResourceEvent) => w.app.host.invoke("machineEvents", { string: JSON.stringify(e) });
/** azcmagent on the node: it writes (and an operator deletes) the node's machine under an identity not the service's. */
const azcmagent = () => new ArmClients({ credential: emulatorCredential(OPERATOR), httpClient: world.arm.httpClient, retryOptions: { maxRetries: 0 } });

/** A node of an adopt pool whose machine azcmagent created under a name of its own, adopted (event twice) and Ready. */
async function adoptedReadyNode() {
  world = await startWorld();
  const pool = await world.app.call("POST", "/api/manage/pools", {
    headers: admin,
    body: {
      name: "byo",
      clusterResourceId: CLUSTER_ID,
      arc: { resourceGroupId: ARC_RG_ID, location: "eastus", mode: "adopt" },
      roleGrants: [{ roleDefinitionId: "acdd72a7-3385-48ef-bd42-f606fba81ae7", scope: "arcResourceGroup" }],
    },
  });
  expect(pool.status).toBe(201);
  const { nodeId } = await world.enrol({ pool: "byo" });
  // Enrolled, but nothing starts until the node's own Arc agent has created its machine.
  await world.app.simulator.runUntilIdle();
  expect(world.app.simulator.instanceIds()).toEqual([]);
  const registry = new Registry({ connectionString: inject("azuriteConnectionString"), prefix: world.app.prefix });
  expect((await registry.nodes.get(nodeId))?.status).toBe("Enrolling");

  // azcmagent connect --tags flexnode-pool=byo,flexnode-node=<id>, under the operator's identity and its own name.
  const machineId = `${ARC_RG_ID}/providers/Microsoft.HybridCompute/machines/edge-host-17`;
  await azcmagent()
    .resources(SUBSCRIPTION)
    .resources.beginCreateOrUpdateByIdAndWait(
      pathArg(machineId),
      "2025-01-13",
      { location: "eastus", identity: { type: "SystemAssigned" }, tags: { "flexnode-pool": "byo", "flexnode-node": nodeId }, properties: { osType: "linux" } },
      { updateIntervalInMs: 1 },
    );
  const written = world.arm.events.published.filter((e) => e.eventType === "Microsoft.Resources.ResourceWriteSuccess" && e.data.resourceUri === machineId);
  expect(written).toHaveLength(1);
  const first = await deliver(world, written[0]!);
  expect(first.logs.at(-1)?.message).toBe(`machine event ${written[0]!.id}: adopting`);
  await deliver(world, written[0]!);
  expect(world.app.simulator.instanceIds()).toEqual([nodeId]);
  expect((await world.settle(nodeId)).output).toEqual({ status: "Ready" });
  return { nodeId, machineId, written: written[0]!, registry };
}

describe("Event Grid: Arc machine events", () => {
  it("ignores the service's own writes and deletes, and offboards a managed machine someone else deleted, once", async () => {
    world = await startWorld();
    const { nodeId } = await world.enrol();
    expect((await world.settle(nodeId)).output).toEqual({ status: "Ready" });

    const own = [...world.arm.events.published];
    expect(own.length).toBeGreaterThan(0);
    for (const e of own) {
      const result = await deliver(world, e);
      expect(result.logs.map((l) => l.message)).toContain(`machine event ${e.id}: ignored (caused by the service itself)`);
    }
    expect(world.app.simulator.instanceIds()).toEqual([nodeId]);

    // An operator deletes the machine in the portal.
    const machineId = world.arm.inspect.machines()[0]!.id;
    const operator = new ArmClients({ credential: emulatorCredential(OPERATOR), httpClient: world.arm.httpClient, retryOptions: { maxRetries: 0 } });
    await operator
      .resources("00000000-0000-4000-8000-000000000001")
      .resources.beginDeleteByIdAndWait(pathArg(machineId), "2025-01-13", { updateIntervalInMs: 1 });
    const deleted = world.arm.events.published.filter(
      (e) =>
        e.eventType === "Microsoft.Resources.ResourceDeleteSuccess" &&
        e.data.claims["http://schemas.microsoft.com/identity/claims/objectidentifier"] === OPERATOR,
    );
    expect(deleted).toHaveLength(1);
    // At-least-once delivery: the same event twice.
    await deliver(world, deleted[0]!);
    await deliver(world, deleted[0]!);
    expect(world.app.simulator.instanceIds().filter((id) => id.endsWith(":offboard"))).toEqual([`${nodeId}:offboard`]);

    const done = await world.settle(`${nodeId}:offboard`);
    expect(done.output).toMatchObject({ remaining: [] });
    expect(world.arm.inspect.machines()).toEqual([]);
    expect(world.arm.inspect.roleAssignments()).toEqual([]);
    expect(world.kube.inspect().nodes).toEqual([]);
    const registry = new Registry({ connectionString: inject("azuriteConnectionString"), prefix: world.app.prefix });
    expect((await registry.nodes.get(nodeId))?.status).toBe("Offboarded");
    // A late duplicate after offboarding changes nothing.
    const late = await deliver(world, deleted[0]!);
    expect(late.logs.at(-1)?.message).toMatch(/ignored \((node already offboarded|not a machine the service manages)\)/);
  });

  it("ignores a delete delivered again after the node was re-enrolled onto a machine of the same id", async () => {
    world = await startWorld();
    const { nodeId, node } = await world.enrol();
    expect((await world.settle(nodeId)).output).toEqual({ status: "Ready" });
    const registry = new Registry({ connectionString: inject("azuriteConnectionString"), prefix: world.app.prefix });
    const machineId = world.arm.inspect.machines()[0]!.id;
    await azcmagent().resources(SUBSCRIPTION).resources.beginDeleteByIdAndWait(pathArg(machineId), "2025-01-13", { updateIntervalInMs: 1 });
    const deleted = world.arm.events.published.find((e) => e.eventType === "Microsoft.Resources.ResourceDeleteSuccess" && e.data.resourceUri === machineId)!;
    expect((await deliver(world, deleted)).logs.at(-1)?.message).toBe(`machine event ${deleted.id}: offboarding`);
    expect((await world.settle(`${nodeId}:offboard`)).output).toMatchObject({ remaining: [] });
    expect((await registry.nodes.get(nodeId))?.status).toBe("Offboarded");
    await world.retire(nodeId);

    // The same machine and key enrol again: the same node id, so the service creates a machine of the same id.
    const agent = await world.reenrol(nodeId, node);
    try {
      expect((await world.settle(nodeId)).output).toEqual({ status: "Ready" });
      expect(world.arm.inspect.machines().map((m) => m.id)).toEqual([machineId]);

      // Event Grid delivers the old delete once more (a retry, up to a day late): the machine is there, so it is old news.
      const logs: string[] = [];
      const unsubscribe = world.arm.events.subscribe(async (e) => void logs.push(...(await deliver(world, e)).logs.map((l) => l.message)));
      await world.arm.events.redeliver(deleted.id);
      unsubscribe();
      expect(world.arm.events.listenerErrors).toEqual([]);
      expect(logs.at(-1)).toBe(`machine event ${deleted.id}: ignored (the machine exists: the delete is a stale or repeated delivery)`);
      await world.app.simulator.runUntilIdle();
      expect(world.app.simulator.getStatus(`${nodeId}:offboard`)?.runtimeStatus).toBe("Completed");
      expect((await registry.nodes.get(nodeId))?.status).toBe("Ready");
      expect(world.arm.inspect.machines().map((m) => m.id)).toEqual([machineId]);
    } finally {
      await agent.close();
    }
  });

  it("refuses, without failing the delivery, a machine whose flexnode tags are no pool name or node id", async () => {
    world = await startWorld();
    const put = async (name: string, tags: Record<string, string>) => {
      const id = `${ARC_RG_ID}/providers/Microsoft.HybridCompute/machines/${name}`;
      await azcmagent()
        .resources(SUBSCRIPTION)
        .resources.beginCreateOrUpdateByIdAndWait(
          pathArg(id),
          "2025-01-13",
          { location: "eastus", identity: { type: "SystemAssigned" }, tags, properties: { osType: "linux" } },
          { updateIntervalInMs: 1 },
        );
      const e = world.arm.events.published.filter((x) => x.data.resourceUri === id).at(-1)!;
      return (await deliver(world, e)).logs.at(-1)?.message;
    };
    const unparseable = /adoptionCandidate \(the machine's flexnode-pool and flexnode-node tags are not a pool name and a node id\)$/;
    expect(await put("t1", { "flexnode-pool": "edge", "flexnode-node": "fn/../x" })).toMatch(unparseable);
    expect(await put("t2", { "flexnode-pool": "ed/ge", "flexnode-node": "fn-000000000000000000000000" })).toMatch(unparseable);
    expect(await put("t3", { "flexnode-pool": "edge#1", "flexnode-node": "fn?x" })).toMatch(unparseable);
    const refusals = (await new Registry({ connectionString: inject("azuriteConnectionString"), prefix: world.app.prefix }).audit.list()).filter(
      (a) => a.action === "machine.adoption-refused",
    );
    expect(refusals.map((a) => a.objectId).sort()).toEqual(["fn-000000000000000000000000", "fn/../x", "fn?x"]);
    expect(world.app.simulator.instanceIds()).toEqual([]);
  });

  it("ignores machines the service does not manage and events that are not about machines", async () => {
    world = await startWorld();
    const stranger = {
      id: "e1",
      subject: "/x",
      eventType: "Microsoft.Resources.ResourceDeleteSuccess",
      eventTime: new Date().toISOString(),
      data: {
        resourceUri: "/subscriptions/00000000-0000-4000-8000-000000000001/resourceGroups/rg-arc/providers/Microsoft.HybridCompute/machines/somebody-else",
        operationName: "Microsoft.HybridCompute/machines/delete",
        claims: {},
      },
    };
    expect((await world.app.host.invoke("machineEvents", { string: JSON.stringify(stranger) })).logs.at(-1)?.message).toMatch(
      /ignored \(not a machine the service manages\)/,
    );
    const storage = {
      ...stranger,
      data: {
        ...stranger.data,
        resourceUri: "/subscriptions/00000000-0000-4000-8000-000000000001/resourceGroups/rg-arc/providers/Microsoft.Storage/storageAccounts/x",
      },
    };
    expect((await world.app.host.invoke("machineEvents", { string: JSON.stringify(storage) })).logs.at(-1)?.message).toMatch(/ignored \(not an Arc machine\)/);
    const other = { ...stranger, eventType: "Microsoft.Resources.ResourceActionSuccess" };
    expect((await world.app.host.invoke("machineEvents", { string: JSON.stringify(other) })).logs.at(-1)?.message).toMatch(
      /ignored \(event type Microsoft.Resources.ResourceActionSuccess is not handled\)/,
    );
    expect(world.app.simulator.instanceIds()).toEqual([]);
  });

  it("adopts a machine azcmagent created for an enrolled node of an adopt pool: one saga, Ready, and the machine outlives offboarding", async () => {
    const { nodeId, machineId, written, registry } = await adoptedReadyNode();
    // A late duplicate after Ready changes nothing.
    expect((await deliver(world, written)).logs.at(-1)?.message).toMatch(/ignored \(node fn-[0-9a-f]+ is Ready\)/);
    expect(world.app.simulator.instanceIds()).toEqual([nodeId]);

    const machine = world.arm.inspect.machines().find((m) => m.id === machineId)!;
    expect(world.arm.inspect.machines()).toHaveLength(1);
    expect(world.arm.inspect.roleAssignments().map((r) => r.principalId)).toEqual([machine.principalId]);
    const node = await registry.nodes.get(nodeId);
    expect(node?.arcMachineId).toBe(machineId);
    expect(node?.createdObjects.some((r) => r.startsWith("arcMachine:"))).toBe(false);

    const decommission = await world.app.call("POST", `/api/manage/nodes/${nodeId}/decommission`, { headers: admin, body: { reason: "retired" } });
    expect(decommission.status).toBe(202);
    expect((await world.settle(`${nodeId}:offboard`)).output).toMatchObject({ remaining: [] });
    expect(world.arm.inspect.roleAssignments()).toEqual([]);
    expect(world.arm.inspect.machines().map((m) => m.id)).toEqual([machineId]);
    expect((await registry.nodes.get(nodeId))?.status).toBe("Offboarded");
  });

  it("offboards a node whose adopted machine someone deleted, once, though azcmagent named the machine", async () => {
    const { nodeId, machineId, registry } = await adoptedReadyNode();
    await azcmagent().resources(SUBSCRIPTION).resources.beginDeleteByIdAndWait(pathArg(machineId), "2025-01-13", { updateIntervalInMs: 1 });
    const deleted = world.arm.events.published.filter((e) => e.eventType === "Microsoft.Resources.ResourceDeleteSuccess" && e.data.resourceUri === machineId);
    expect(deleted).toHaveLength(1);
    expect((await deliver(world, deleted[0]!)).logs.at(-1)?.message).toBe(`machine event ${deleted[0]!.id}: offboarding`);
    await deliver(world, deleted[0]!);
    expect(world.app.simulator.instanceIds().filter((id) => id.endsWith(":offboard"))).toEqual([`${nodeId}:offboard`]);
    expect((await world.settle(`${nodeId}:offboard`)).output).toMatchObject({ remaining: [] });
    expect(world.arm.inspect.roleAssignments()).toEqual([]);
    expect(world.kube.inspect().nodes).toEqual([]);
    expect((await registry.nodes.get(nodeId))?.status).toBe("Offboarded");
    expect((await deliver(world, deleted[0]!)).logs.at(-1)?.message).toMatch(/ignored \(node already offboarded\)/);

    // A machine of the same name in another resource group is another machine: its delete is not this node's.
    const elsewhere = machineId.replace(ARC_RG_ID, `/subscriptions/${SUBSCRIPTION}/resourceGroups/rg-other`);
    expect(await registry.nodes.getByAdoptedMachine(elsewhere)).toBeUndefined();
    expect(await registry.nodes.getByAdoptedMachine(machineId.toUpperCase())).toMatchObject({ nodeId });
  });

  it("does not adopt a machine tagged for a pending node from outside the pool's resource group", async () => {
    world = await startWorld();
    expect(
      (
        await world.app.call("POST", "/api/manage/pools", {
          headers: admin,
          body: { name: "byo", clusterResourceId: CLUSTER_ID, arc: { resourceGroupId: ARC_RG_ID, location: "eastus", mode: "adopt" } },
        })
      ).status,
    ).toBe(201);
    const { nodeId } = await world.enrol({ pool: "byo" });
    // Someone who may onboard machines into another resource group of the subscription tags one for this node.
    world.arm.addResourceGroup(SUBSCRIPTION, "rg-elsewhere", "eastus");
    const machineId = `/subscriptions/${SUBSCRIPTION}/resourceGroups/rg-elsewhere/providers/Microsoft.HybridCompute/machines/intruder`;
    await azcmagent()
      .resources(SUBSCRIPTION)
      .resources.beginCreateOrUpdateByIdAndWait(
        pathArg(machineId),
        "2025-01-13",
        {
          location: "eastus",
          identity: { type: "SystemAssigned" },
          tags: { "flexnode-pool": "byo", "flexnode-node": nodeId },
          properties: { osType: "linux" },
        },
        { updateIntervalInMs: 1 },
      );
    const written = world.arm.events.published.find((e) => e.data.resourceUri === machineId)!;
    expect((await deliver(world, written)).logs.at(-1)?.message).toMatch(/adoptionCandidate \(the machine is not in pool byo's resource group/);
    const registry = new Registry({ connectionString: inject("azuriteConnectionString"), prefix: world.app.prefix });
    expect((await registry.nodes.get(nodeId))?.arcMachineId).toBeUndefined();
    expect(world.app.simulator.instanceIds()).toEqual([]);
    expect((await registry.audit.list()).filter((a) => a.action === "machine.adoption-refused").map((a) => a.details?.machineId)).toEqual([machineId]);
  });

  it("does not adopt a machine for a create pool, for an unknown node, or one the service itself created", async () => {
    world = await startWorld();
    const { nodeId } = await world.enrol();
    expect((await world.settle(nodeId)).output).toEqual({ status: "Ready" });
    const agent = new ArmClients({ credential: emulatorCredential(OPERATOR), httpClient: world.arm.httpClient, retryOptions: { maxRetries: 0 } });
    const put = async (name: string, tags: Record<string, string>) => {
      const id = `${ARC_RG_ID}/providers/Microsoft.HybridCompute/machines/${name}`;
      await agent
        .resources(SUBSCRIPTION)
        .resources.beginCreateOrUpdateByIdAndWait(
          pathArg(id),
          "2025-01-13",
          { location: "eastus", identity: { type: "SystemAssigned" }, tags, properties: { osType: "linux" } },
          { updateIntervalInMs: 1 },
        );
      const e = world.arm.events.published.filter((x) => x.data.resourceUri === id).at(-1)!;
      return (await deliver(world, e)).logs.at(-1)?.message;
    };
    expect(await put("h1", { "flexnode-pool": "edge", "flexnode-node": nodeId })).toMatch(
      /adoptionCandidate \(pool edge creates its nodes' machines; it adopts none\)$/,
    );
    expect(await put("h2", { "flexnode-pool": "edge", "flexnode-node": "fn-000000000000000000000000" })).toMatch(
      /adoptionCandidate \(no node fn-0+ is enrolled in pool edge\)$/,
    );
    expect(await put("h3", { env: "lab" })).toMatch(/ignored \(not tagged for a flexnode pool\)$/);
    expect(await put("h4", { "managed-by": "flexnode-onboarding", "flexnode-node": nodeId })).toMatch(/ignored \(created by the service\)$/);
    const refusals = (await new Registry({ connectionString: inject("azuriteConnectionString"), prefix: world.app.prefix }).audit.list()).filter(
      (a) => a.action === "machine.adoption-refused",
    );
    expect(refusals.map((a) => String(a.details?.reason)).sort()).toEqual([
      "no node fn-000000000000000000000000 is enrolled in pool edge",
      "pool edge creates its nodes' machines; it adopts none",
    ]);
    expect(world.app.simulator.instanceIds()).toEqual([nodeId]);
  });
});
