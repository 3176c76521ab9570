/**
 * Durable's terminate does not stop an activity already running. An admin's cancel that lands while the saga's
 * markReady runs must not leave a node Ready with everything removed under it: the compensation takes the node from
 * the onboarding before it removes anything, and whichever write comes first wins.
 */
import { afterEach, expect, inject, it } from "vitest";
import { Registry } from "../../orchestrations/clients/registry/registry.js";
import { admin } from "../function-app/index.js";
import { startWorld, type World } from "../onboard/world.js";

let world: World;
afterEach(async () => {
  await world?.close();
});

function interceptActivity(name: string, before: () => Promise<void>): void {
  const fn = world.app.simulator.host.registry.functions.get(name)!;
  const original = fn.callback as (...a: unknown[]) => unknown;
  let done = false;
  fn.callback = (async (...args: unknown[]) => {
    if (!done) {
      done = true;
      await before();
    }
    return original(...args);
  }) as typeof fn.callback;
}

it("a cancel that lands while markReady runs undoes nothing once the node is Ready: the node keeps its machine and grants", async () => {
  world = await startWorld();
  const registry = new Registry({ connectionString: inject("azuriteConnectionString"), prefix: world.app.prefix });
  const { nodeId } = await world.enrol();
  let cancel: number | undefined;
  interceptActivity("onboard_markReady", async () => {
    cancel = (await world.app.call("POST", `/api/manage/nodes/${nodeId}/cancel`, { headers: admin })).status;
  });
  await world.settle(nodeId);
  expect(cancel).toBe(202);
  const compensation = await world.settle(`${nodeId}:compensate`);
  expect(compensation.output).toEqual({ removed: [], remaining: [] });

  const node = (await registry.nodes.get(nodeId))!;
  expect(node.status).toBe("Ready");
  expect(node.createdObjects.length).toBeGreaterThan(0);
  expect(world.arm.inspect.machines()).toHaveLength(1);
  expect(world.arm.inspect.roleAssignments()).toHaveLength(2);
});

it("a compensation that claims the node first keeps the stopped saga's late markReady from making it Ready", async () => {
  world = await startWorld();
  const registry = new Registry({ connectionString: inject("azuriteConnectionString"), prefix: world.app.prefix });
  const { nodeId } = await world.enrol();
  interceptActivity("onboard_markReady", async () => {
    expect((await world.app.call("POST", `/api/manage/nodes/${nodeId}/cancel`, { headers: admin })).status).toBe(202);
    // The compensation runs to its end before the stopped saga's markReady writes.
    await world.settle(`${nodeId}:compensate`);
  });
  await world.settle(nodeId);

  const node = (await registry.nodes.get(nodeId))!;
  expect(node.status).toBe("Failed");
  expect(node.createdObjects).toEqual([]);
  expect(world.arm.inspect.machines()).toHaveLength(0);
  expect(world.arm.inspect.roleAssignments()).toHaveLength(0);
});
