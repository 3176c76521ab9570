/**
 * A Failed node enrols again and the start of its new saga fails (the Durable management API answers 500 on a
 * storage error): the node is Enrolling, the instance under its id is the earlier, finished run. The agent's retry
 * must start the run the enrolment is owed, not leave the node Enrolling until the sweeper's deadline.
 */
import { afterEach, expect, it } from "vitest";
import { startWorld, type World } from "./world.js";

let world: World;
afterEach(async () => {
  await world?.close();
});

it("an enrolment retry starts the saga whose start failed, when the instance under the node's id is an earlier, finished run", async () => {
  world = await startWorld();
  const sim = world.app.simulator;
  const { nodeId, node } = await world.enrol({ script: (e) => (e.stepId === "sysctl" ? "fail" : "succeed") });
  expect((await world.settle(nodeId)).output).toMatchObject({ status: "Failed" });
  const firstRun = (sim.getStatus(nodeId)!.input as { run: string }).run;

  const realStart = sim.startNew.bind(sim);
  let failNext = true;
  sim.startNew = ((name: string, options?: Parameters<typeof realStart>[1]) => {
    if (failNext) {
      failNext = false;
      throw new Error("simulated transient storage failure");
    }
    return realStart(name, options);
  }) as typeof sim.startNew;

  const token = await world.app.createToken("edge");
  expect((await world.app.enrol(node, token)).status).toBeGreaterThanOrEqual(500);
  expect(sim.getStatus(nodeId)!.runtimeStatus).toBe("Completed");
  const retry = await world.app.enrol(node, token);
  expect(retry.status).toBe(200);
  const second = sim.getStatus(nodeId)!;
  expect((second.input as { run: string }).run).not.toBe(firstRun);
  expect(second.runtimeStatus).toMatch(/Running|Pending/);
});
