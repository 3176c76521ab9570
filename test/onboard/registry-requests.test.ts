/**
 * The registry's cost of one saga, counted as requests to the node's registry tables (the Table service bills and
 * throttles per request): enrolment, the onboard saga's activities, the agent's API calls and the node's results.
 * Issue 16: ≤ 60 per saga (bench/fleet.ts measures the same over a fleet).
 */
import dc from "node:diagnostics_channel";
import type { ClientRequest } from "node:http";
import { afterEach, beforeEach, describe, expect, inject, it } from "vitest";
import { Registry } from "../../orchestrations/clients/registry/registry.js";
import { startWorld, type World } from "./world.js";

let world: World;
beforeEach(async () => {
  world = await startWorld();
});
afterEach(async () => {
  await world.close();
});

/** Counts requests whose path names one of this world's tables (its prefix), whoever sends them. */
function countRequests(prefix: string): { count(): number; stop(): void } {
  let n = 0;
  const listener = (message: unknown) => {
    const path = (message as { request: ClientRequest }).request.path;
    if (path.includes(`/${prefix}`) || path.includes("$batch")) n++;
  };
  dc.subscribe("http.client.request.start", listener);
  return { count: () => n, stop: () => dc.unsubscribe("http.client.request.start", listener) };
}

describe("registry requests", () => {
  it("an enrolment and its onboard saga to Ready take at most 60 registry requests", async () => {
    const census = countRequests(world.app.prefix);
    try {
      const { nodeId, agent } = await world.enrol();
      const done = await world.settle(nodeId);
      expect(agent.errors).toEqual([]);
      expect(done).toMatchObject({ output: { status: "Ready" } });
      expect(census.count()).toBeLessThanOrEqual(60);
    } finally {
      census.stop();
    }
  });

  it("audits the objects a run created in the row that ends it, not one row per object", async () => {
    const { nodeId } = await world.enrol();
    await world.settle(nodeId);
    const registry = new Registry({ connectionString: inject("azuriteConnectionString"), prefix: world.app.prefix });
    const rows = await registry.audit.list({ objectId: nodeId });
    expect(rows.map((r) => r.action)).not.toContain("node.object-created");
    const ready = rows.find((r) => r.action === "node.ready");
    const objects = ready?.details?.objects as string[] | undefined;
    expect(objects).toEqual((await registry.nodes.get(nodeId))!.createdObjects);
    expect(objects?.some((o) => o.startsWith("arcMachine:"))).toBe(true);
    expect(objects?.filter((o) => o.startsWith("roleAssignment:")).length).toBeGreaterThan(0);
  });
});
