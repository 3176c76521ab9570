/**
 * The Durable extension fails an orchestration whose custom status is over 16 KB of UTF-16, outside its code: no
 * compensation runs and the node's Arc machine and grants stay. A node's error messages are the node's to choose, so
 * the saga's status must stay under the cap whatever they say (the simulator enforces the cap as the extension does).
 */
import { afterEach, expect, it } from "vitest";
import { fitStatus, type OnboardStatus } from "../../orchestrations/onboard/onboard-node.js";
import { startWorld, type World } from "./world.js";

let world: World;
afterEach(async () => {
  await world?.close();
});

it("fails and compensates normally when every attempt of a step fails with a long message JSON must escape", async () => {
  world = await startWorld();
  const { nodeId } = await world.enrol({ script: (e) => (e.stepId === "sysctl" ? "failVerbose" : "succeed") });
  const done = await world.settle(nodeId);
  expect(done.runtimeStatus).toBe("Completed");
  expect(done.output).toMatchObject({ status: "Failed", error: { code: "NodeStepFailed" } });
  expect(world.arm.inspect.machines()).toHaveLength(0);
  expect(world.arm.inspect.roleAssignments()).toHaveLength(0);
  expect(JSON.stringify(done.customStatus).length).toBeLessThan(8_704);
});

it("keeps the newest attempts and a shortened last error within the budget", () => {
  const attempt = { step: "s", attempt: 1, outcome: "failed" as const, startedAt: "2030-01-01T00:00:00.000Z", durationMs: 1 };
  const status: OnboardStatus = {
    phase: "runNodeSteps",
    lastError: '"'.repeat(4096),
    attempts: Array.from({ length: 40 }, (_, i) => ({ ...attempt, attempt: i + 1 })),
  };
  const fitted = fitStatus(status);
  expect(JSON.stringify(fitted).length).toBeLessThanOrEqual(7_500);
  expect(fitted.lastError).toMatch(/… \(4096 characters\)$/);
  expect(fitted.attempts!.at(-1)!.attempt).toBe(40);
  expect(fitStatus({ phase: "reserve" })).toStrictEqual({ phase: "reserve" });
});
