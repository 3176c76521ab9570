/**
 * What a saga begins with: the activity that begins it (reserve, offboardBegin, compensationContext) reads the node
 * and the run's timing in full, so history holds both and a replay never sees a later deploy's constants; and it is
 * called with the sagas' Azure retries, so a transient registry failure there does not kill the saga (a decommission
 * already answered 202 must not be silently lost).
 */
import { afterEach, describe, expect, it } from "vitest";
import { PRODUCTION_TIMING, timingFrom } from "../../orchestrations/onboard/timing.js";
import { admin } from "../function-app/index.js";
import { startWorld, TEST_TIMING, type World } from "./world.js";

let world: World;
afterEach(async () => {
  await world.close();
});

/** The activity fails `times` times (as a registry outage would fail it), then runs as before. */
function failFirst(w: World, name: string, times = 1): void {
  const fns = w.app.host.registry.functions;
  const fn = fns.get(name)!;
  let left = times;
  fns.set(name, {
    ...fn,
    callback: (...args) => {
      if (left-- > 0) throw new Error("registry unavailable (503 ServerBusy)");
      return fn.callback(...args);
    },
  });
}

async function runUntilStep(w: World, nodeId: string, step: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    await w.app.simulator.runUntilIdle();
    if ((w.app.simulator.getStatus(nodeId)?.customStatus as { step?: string } | null)?.step === step) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`saga ${nodeId} never reached step ${step}`);
}

const resultsOf = (w: World, name: string) => w.app.simulator.activityLog.filter((a) => a.name === name && a.outcome === "completed").map((a) => a.result);

describe("the run's timing is in its history", () => {
  it("reserve and offboardBegin answer the timing in full", async () => {
    world = await startWorld();
    const { nodeId } = await world.enrol();
    expect((await world.settle(nodeId)).output).toEqual({ status: "Ready" });
    expect((await world.app.call("POST", `/api/manage/nodes/${nodeId}/decommission`, { headers: admin })).status).toBe(202);
    await world.settle(`${nodeId}:offboard`);
    const full = timingFrom(TEST_TIMING);
    expect(resultsOf(world, "onboard_reserve").map((r) => (r as { timing: unknown }).timing)).toEqual([full]);
    expect(resultsOf(world, "offboard_begin").map((r) => (r as { timing: unknown }).timing)).toEqual([full]);
  }, 60_000);

  it("an offboarding in flight across a deploy that changes the production timing keeps its own", async () => {
    world = await startWorld({ machineDelete: { retryAfterSeconds: 200 } });
    const { nodeId } = await world.enrol();
    expect((await world.settle(nodeId)).output).toEqual({ status: "Ready" });
    expect((await world.app.call("POST", `/api/manage/nodes/${nodeId}/decommission`, { headers: admin })).status).toBe(202);
    // Run until the offboarding waits on ARM's machine deletion (Retry-After 200 s).
    for (let i = 0; i < 100; i++) {
      await world.app.simulator.runUntilIdle();
      if (world.app.simulator.activityLog.filter((a) => a.name === "onboard_removeObject").length >= 5) break;
      const next = world.app.simulator.nextTimerAt();
      if (next !== undefined) await world.app.simulator.advance(Math.max(0, next - world.clock.now()));
    }
    const lroWait = PRODUCTION_TIMING.lroWait;
    try {
      // New code deployed: the bound on a machine deletion is tuned below what this run has already waited.
      (PRODUCTION_TIMING as { lroWait: typeof lroWait }).lroWait = { ...lroWait, maxTotalMs: 100_000 };
      expect((await world.settle(`${nodeId}:offboard`)).runtimeStatus).toBe("Completed");
      expect(world.app.simulator.getStatus(`${nodeId}:offboard`)?.output).toMatchObject({ remaining: [] });
    } finally {
      (PRODUCTION_TIMING as { lroWait: typeof lroWait }).lroWait = lroWait;
    }
  }, 60_000);
});

describe("a transient registry failure as a saga begins", () => {
  it("reserve is retried: the node onboards", async () => {
    world = await startWorld();
    failFirst(world, "onboard_reserve", 2);
    const { nodeId } = await world.enrol();
    expect((await world.settle(nodeId)).output).toEqual({ status: "Ready" });
  }, 60_000);

  it("offboardBegin is retried: a decommission answered 202 offboards the node", async () => {
    world = await startWorld();
    const { nodeId } = await world.enrol();
    expect((await world.settle(nodeId)).output).toEqual({ status: "Ready" });
    failFirst(world, "offboard_begin", 2);
    expect((await world.app.call("POST", `/api/manage/nodes/${nodeId}/decommission`, { headers: admin })).status).toBe(202);
    expect((await world.settle(`${nodeId}:offboard`)).runtimeStatus).toBe("Completed");
    expect(world.app.simulator.getStatus(`${nodeId}:offboard`)?.output).toMatchObject({ remaining: [] });
    expect(world.arm.inspect.machines()).toHaveLength(0);
  }, 60_000);

  it("compensationContext is retried: a cancelled onboarding is still undone, with its timing in history", async () => {
    world = await startWorld();
    const { nodeId } = await world.enrol({ script: (e) => (e.stepId === "container-runtime" ? "silent" : "succeed") });
    await runUntilStep(world, nodeId, "container-runtime");
    failFirst(world, "onboard_compensationContext", 2);
    expect((await world.app.call("POST", `/api/manage/nodes/${nodeId}/cancel`, { headers: admin })).status).toBe(202);
    expect((await world.settle(`${nodeId}:compensate`)).runtimeStatus).toBe("Completed");
    expect(world.app.simulator.getStatus(`${nodeId}:compensate`)?.output).toMatchObject({ remaining: [] });
    expect(world.arm.inspect.machines()).toHaveLength(0);
    expect(resultsOf(world, "onboard_compensationContext").map((r) => (r as { timing: unknown }).timing)).toEqual([timingFrom(TEST_TIMING)]);
  }, 60_000);
});
