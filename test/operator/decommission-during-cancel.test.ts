/**
 * A decommission that lands while a cancel's compensation is still removing the node's objects (an Arc machine
 * deletion ARM takes minutes over): the offboarding takes the node over. The compensation is stopped, so it cannot end
 * beside the offboarding and mark a decommissioned node Failed — where a retry would onboard it again.
 */
import { inject } from "vitest";
import { afterEach, describe, expect, it } from "vitest";
import { Registry } from "../../orchestrations/clients/registry/registry.js";
import { admin } from "../function-app/index.js";
import { startWorld, type World } from "../onboard/world.js";

let world: World;
afterEach(async () => {
  await world.close();
});
const registry = () => new Registry({ connectionString: inject("azuriteConnectionString"), prefix: world.app.prefix });

describe("decommission while a cancel's compensation runs", () => {
  it("stops the compensation; the node ends Offboarded, not Failed, and cannot be retried into a new onboarding", async () => {
    world = await startWorld({ machineDelete: { retryAfterSeconds: 200 } });
    const { nodeId } = await world.enrol({ script: (e) => (e.stepId === "container-runtime" ? "silent" : "succeed") });
    for (let i = 0; i < 200; i++) {
      await world.app.simulator.runUntilIdle();
      if ((world.app.simulator.getStatus(nodeId)?.customStatus as { step?: string } | null)?.step === "container-runtime") break;
      await new Promise((r) => setTimeout(r, 10));
    }
    expect((await world.app.call("POST", `/api/manage/nodes/${nodeId}/cancel`, { headers: admin })).status).toBe(202);
    await world.app.simulator.runUntilIdle();
    // The compensation waits on the machine's deletion (Retry-After 200 s).
    expect(world.app.simulator.getStatus(`${nodeId}:compensate`)?.runtimeStatus).toBe("Running");

    expect((await world.app.call("POST", `/api/manage/nodes/${nodeId}/decommission`, { headers: admin })).status).toBe(202);
    await world.app.simulator.runUntilIdle();
    expect(world.app.simulator.getStatus(`${nodeId}:compensate`)?.runtimeStatus).toBe("Terminated");

    expect((await world.settle(`${nodeId}:offboard`)).output).toMatchObject({ remaining: [] });
    const node = (await registry().nodes.get(nodeId))!;
    expect([node.status, node.createdObjects]).toEqual(["Offboarded", []]);
    expect(world.arm.inspect.machines()).toHaveLength(0);
    expect((await registry().audit.list({ objectId: nodeId })).map((e) => e.action)).not.toContain("node.failed");

    const retry = await world.app.call("POST", `/api/manage/nodes/${nodeId}/retry`, { headers: admin });
    expect(retry.status).toBe(409);
    await world.app.simulator.runUntilIdle();
    expect(world.app.simulator.getStatus(nodeId)?.runtimeStatus).toBe("Terminated");
    expect((await registry().nodes.get(nodeId))!.status).toBe("Offboarded");
  }, 120_000);
});
