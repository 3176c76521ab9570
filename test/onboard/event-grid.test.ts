import { inject } from "vitest";
import { afterEach, describe, expect, it } from "vitest";
import { ArmClients } from "../../orchestrations/azure/arm-clients.js";
import { Registry } from "../../orchestrations/registry/registry.js";
import { emulatorCredential, type ResourceEvent } from "../arm-emulator/index.js";
import { startWorld, type World } from "./world.js";

let world: World;
afterEach(async () => {
  await world.close();
});

const OPERATOR = "0badc0de-0000-4000-8000-000000000001";
const deliver = (w: World, e: ResourceEvent) => w.app.host.invoke("machineEvents", { string: JSON.stringify(e) });

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
    await operator.resources("00000000-0000-4000-8000-000000000001").resources.beginDeleteByIdAndWait(machineId, "2025-01-13", { updateIntervalInMs: 1 });
    const deleted = world.arm.events.published.filter((e) => e.eventType === "Microsoft.Resources.ResourceDeleteSuccess" && e.data.claims["http://schemas.microsoft.com/identity/claims/objectidentifier"] === OPERATOR);
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
    expect((await registry.getNode(nodeId))?.status).toBe("Offboarded");
    // A late duplicate after offboarding changes nothing.
    const late = await deliver(world, deleted[0]!);
    expect(late.logs.at(-1)?.message).toMatch(/ignored \((node already offboarded|not a machine the service manages)\)/);
  });

  it("ignores machines the service does not manage and events that are not about machines", async () => {
    world = await startWorld();
    const stranger = { id: "e1", subject: "/x", eventType: "Microsoft.Resources.ResourceDeleteSuccess", eventTime: new Date().toISOString(), data: { resourceUri: "/subscriptions/00000000-0000-4000-8000-000000000001/resourceGroups/rg-arc/providers/Microsoft.HybridCompute/machines/somebody-else", operationName: "Microsoft.HybridCompute/machines/delete", claims: {} } };
    expect((await world.app.host.invoke("machineEvents", { string: JSON.stringify(stranger) })).logs.at(-1)?.message).toMatch(/ignored \(not a machine the service manages\)/);
    const storage = { ...stranger, data: { ...stranger.data, resourceUri: "/subscriptions/00000000-0000-4000-8000-000000000001/resourceGroups/rg-arc/providers/Microsoft.Storage/storageAccounts/x" } };
    expect((await world.app.host.invoke("machineEvents", { string: JSON.stringify(storage) })).logs.at(-1)?.message).toMatch(/ignored \(not an Arc machine\)/);
    expect((await world.app.host.invoke("machineEvents", { string: JSON.stringify({ nonsense: true }) })).logs.at(-1)?.message).toMatch(/ignored \(not a resource event/);
    expect(world.app.simulator.instanceIds()).toEqual([]);
  });
});
