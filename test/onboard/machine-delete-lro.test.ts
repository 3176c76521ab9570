/**
 * Issue 13 item 2: the Arc machine DELETE as ARM runs it — 202 with Retry-After 200 (azure-rest-api-specs
 * hybridcompute stable/2025-01-13/examples/machine/Machines_Delete.json at 0fab7d2318277308e6ac552937b07dc68d30c30d)
 * and an operation that takes minutes. The saga starts the delete in one activity and waits on durable timers between
 * short looks; on the virtual clock every wait is exactly what ARM asked for, and no activity waits at all.
 */
import { afterEach, describe, expect, it } from "vitest";
import { admin } from "../function-app/index.js";
import { startWorld, type World } from "./world.js";

let world: World;
afterEach(async () => {
  await world.close();
});

describe("Arc machine deletion as a long-running operation", () => {
  it("offboards through a 202 with Retry-After 200 and a 500 s operation, looking every 200 s on durable timers", async () => {
    world = await startWorld({ machineDelete: { retryAfterSeconds: 200, runForMs: 500_000 } });
    const { nodeId } = await world.enrol();
    expect((await world.settle(nodeId)).output).toEqual({ status: "Ready" });
    const machineId = world.arm.inspect.machines()[0]!.id;

    const decommission = await world.app.call("POST", `/api/manage/nodes/${nodeId}/decommission`, { headers: admin, body: { reason: "retired" } });
    expect(decommission.status).toBe(202);
    expect((await world.settle(`${nodeId}:offboard`)).output).toMatchObject({ remaining: [] });
    expect(world.arm.inspect.machines()).toEqual([]);

    const deletes = world.arm.requests.filter({ method: "DELETE", route: "machines.delete" });
    expect(deletes.map((d) => [d.path, d.status])).toEqual([[machineId, 202]]);
    const looks = world.arm.requests.filter({ route: "machines.operationStatus" });
    // Started at t, done at t + 500 s: looks at t + 200 s and t + 400 s find it running, the one at t + 600 s done.
    expect(looks.map((l) => l.at - deletes[0]!.at)).toEqual([200_000, 400_000, 600_000]);
    // Each look is its own short activity: no SDK poller ran inside one (it would have polled again at once).
    expect(world.arm.requests.filter({ route: "machines.operationResult" })).toEqual([]);
  });
});
