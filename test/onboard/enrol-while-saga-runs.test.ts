/**
 * Enrolment starts a new onboarding of an existing node — a clone replace (rekey) or a Failed node starting over —
 * only once the node's other sagas have ended. Started beside a running offboarding, the two would race for the
 * node's status and objects; started while the failed run is still finishing, the start would be a no-op and the
 * node would be left Enrolling with no saga. Either way enrolment answers 409 with Retry-After and the agent retries.
 *
 * These pass once enrolment asks `onboardingMustWait` (use-cases/node-sagas.ts) in rekey and startOver.
 */
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

describe("enrolment while another saga of the node runs", () => {
  it("refuses a clone replace (rekey) while the node's offboarding runs (409, Retry-After), and onboards it once that has finished", async () => {
    world = await startWorld({ poolSpec: { clonePolicy: "replace" }, machineDelete: { retryAfterSeconds: 5 } });
    const { nodeId, node } = await world.enrol();
    expect((await world.settle(nodeId)).output).toEqual({ status: "Ready" });
    // The machine is being re-imaged: its agent no longer answers, so the offboarding waits for the reset.
    await world.retire(nodeId);
    expect((await world.app.call("POST", `/api/manage/nodes/${nodeId}/decommission`, { headers: admin })).status).toBe(202);
    await world.app.simulator.runUntilIdle();
    expect(world.app.simulator.getStatus(`${nodeId}:offboard`)?.runtimeStatus).toBe("Running");
    expect((await registry().nodes.get(nodeId))?.status).toBe("Offboarding");

    // The re-imaged machine (same identity, fresh key) enrols again.
    const reimaged = newNode(node.facts);
    const refused = await world.app.enrol(reimaged, await world.app.createToken("edge"));
    expect([refused.status, (refused.json as { type?: string }).type?.split("/").pop(), refused.headers["retry-after"]]).toEqual([409, "saga-finishing", "5"]);
    await world.app.simulator.runUntilIdle();
    expect(world.app.simulator.getStatus(nodeId)?.runtimeStatus).toBe("Completed");
    expect((await registry().nodes.get(nodeId))?.publicKey).not.toBe(reimaged.publicKey);

    expect((await world.settle(`${nodeId}:offboard`)).output).toMatchObject({ remaining: [] });
    expect((await registry().nodes.get(nodeId))?.status).toBe("Offboarded");
    // The agent's retry, after the offboarding: the node onboards under its new key.
    const again = await world.app.enrol(reimaged, await world.app.createToken("edge"));
    expect(again.status).toBe(201);
    await world.app.simulator.runUntilIdle();
    expect(world.app.simulator.getStatus(nodeId)?.runtimeStatus).toBe("Running");
    expect((await registry().nodes.get(nodeId))?.publicKey).toBe(reimaged.publicKey);
  }, 120_000);

  it("refuses a Failed node's re-enrolment while its failed run is still finishing (409, Retry-After); the retry after it ends gets a saga", async () => {
    let eventGridDown = true;
    world = await startWorld({
      events: {
        publish: async (events) => {
          if (eventGridDown && events.some((e) => e.type.endsWith(".failed"))) throw new Error("Event Grid down");
        },
      },
    });
    const { nodeId, node } = await world.enrol({ script: (e) => (e.stepId === "sysctl" ? "fail" : "succeed") });
    // Drive the saga until the node is Failed while the saga still runs (it retries the failure's announcement).
    for (let i = 0; i < 400; i++) {
      await world.app.simulator.runUntilIdle();
      if ((await registry().nodes.get(nodeId))?.status === "Failed") break;
      await new Promise((r) => setTimeout(r, 10));
      const next = world.app.simulator.nextTimerAt();
      if (!world.app.simulator.hasPendingWork() && next !== undefined) await world.app.simulator.advance(Math.max(0, next - world.clock.now()));
    }
    expect((await registry().nodes.get(nodeId))?.status).toBe("Failed");
    expect(world.app.simulator.getStatus(nodeId)?.runtimeStatus).toBe("Running");

    // The operator fixes the machine and runs the agent again: same key.
    const refused = await world.app.enrol(node, await world.app.createToken("edge"));
    expect([refused.status, (refused.json as { type?: string }).type?.split("/").pop(), refused.headers["retry-after"]]).toEqual([409, "saga-finishing", "5"]);
    expect((await registry().nodes.get(nodeId))?.status).toBe("Failed");
    eventGridDown = false;
    expect((await world.settle(nodeId)).output).toMatchObject({ status: "Failed" });

    // The agent retries its enrolment, as it does on 409 with Retry-After.
    const retry = await world.app.enrol(node, await world.app.createToken("edge"));
    expect(retry.status).toBe(201);
    await world.app.simulator.runUntilIdle();
    expect(world.app.simulator.getStatus(nodeId)?.runtimeStatus).toBe("Running");
    expect((await registry().nodes.get(nodeId))?.status).not.toBe("Failed");
  }, 120_000);
});
