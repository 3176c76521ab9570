import * as df from "durable-functions";
import { InvocationContext } from "@azure/functions";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ManualClock } from "../support/index.js";
import { startDurableHarness, type DurableHarness } from "./harness.js";
import { type DurableSimulator } from "./simulator.js";
import { EventType } from "./wire.js";
import { registerOrderSaga, resetScript, script } from "./fixtures/order-saga.js";

registerOrderSaga();
const T0 = Date.UTC(2030, 0, 1);

let h: DurableHarness;
let sim: DurableSimulator;

beforeEach(async () => {
  resetScript();
  h = await startDurableHarness({ clock: new ManualClock(T0) });
  sim = h.simulator;
});
afterEach(async () => {
  await h.close();
});

/** The sequence ids the extension assigned, as "name#id" in scheduling order. */
function scheduledIds(instanceId: string): string[] {
  return sim
    .history(instanceId)
    .filter((e) => e.EventType === EventType.TaskScheduled || e.EventType === EventType.TimerCreated)
    .map((e) => `${e.EventType === EventType.TimerCreated ? "timer" : String(e.Name)}#${e.EventId}`);
}

describe("Durable simulator driving the real durable-functions replay engine", () => {
  it("retries a failing activity at exactly the virtual times the retry options imply, then succeeds", async () => {
    script.chargeFailures = 2;
    const id = sim.startNew("sim_orderSaga", { instanceId: "retry", input: { id: "o1" } });
    await sim.runUntilIdle();
    expect(sim.activityLog.map((c) => [c.name, c.attempt, c.outcome])).toEqual([
      ["sim_reserveStock", 1, "completed"],
      ["sim_chargePayment", 1, "failed"],
    ]);

    await sim.advance(999);
    expect(sim.activityLog.filter((c) => c.name === "sim_chargePayment")).toHaveLength(1);
    await sim.advance(1); // first back-off: 1000 ms
    await sim.advance(1999);
    expect(sim.activityLog.filter((c) => c.name === "sim_chargePayment")).toHaveLength(2);
    await sim.advance(1); // second back-off: 1000 * 2^1 ms

    const charges = sim.activityLog.filter((c) => c.name === "sim_chargePayment");
    expect(charges.map((c) => [c.attempt, c.startedAt - T0, c.outcome])).toEqual([
      [1, 0, "failed"],
      [2, 1000, "failed"],
      [3, 3000, "completed"],
    ]);
    expect(script.charged).toEqual(["o1"]);
    expect(sim.getStatus(id)?.customStatus).toEqual({ stage: "awaitingApproval" });
    // DTFx ids: one per attempt and one per back-off timer, allocated as the failures are delivered.
    expect(scheduledIds(id)).toEqual([
      "sim_reserveStock#0",
      "sim_chargePayment#1",
      "timer#2",
      "sim_chargePayment#3",
      "timer#4",
      "sim_chargePayment#5",
      "timer#6",
    ]);

    expect(sim.raiseEvent(id, "Approval", { approved: true })).toBe("accepted");
    const done = await sim.runToCompletion(id);
    expect(done.runtimeStatus).toBe("Completed");
    expect(done.output).toEqual({ status: "shipped", receipt: { receipt: "rcpt-o1" }, shipped: "shipped:o1" });
  });

  it("surfaces the last failure after the final back-off once attempts are exhausted", async () => {
    script.chargeFailures = 5;
    const id = sim.startNew("sim_orderSaga", { input: { id: "o2" } });
    const done = await sim.runToCompletion(id);
    expect(done.output).toEqual({ status: "compensated", reason: "Error: gateway down" });
    expect(sim.clock.now() - T0).toBe(1000 + 2000 + 4000);
    expect(sim.activityLog.filter((c) => c.name === "sim_chargePayment")).toHaveLength(3);
    expect(script.released).toEqual(["o2"]);
  });

  it("legacy extensions without FailureDetails still surface the activity's message", async () => {
    await h.close();
    h = await startDurableHarness({ clock: new ManualClock(T0), failureDetails: false });
    sim = h.simulator;
    script.chargeFailures = 5;
    const id = sim.startNew("sim_orderSaga", { input: { id: "o3" } });
    const done = await sim.runToCompletion(id);
    expect((done.output as { reason: string }).reason).toMatch(/^Activity function 'sim_chargePayment' failed: gateway down \n Error: gateway down/);
  });

  it("lets the event win the race against the timer", async () => {
    const id = sim.startNew("sim_orderSaga", { input: { id: "o4" } });
    await sim.runUntilIdle();
    await sim.advance(59 * 60_000);
    expect(sim.getStatus(id)?.runtimeStatus).toBe("Running");
    sim.raiseEvent(id, "Approval", { approved: true });
    await sim.runUntilIdle();
    const status = sim.getStatus(id)!;
    expect(status.runtimeStatus).toBe("Completed");
    expect((status.output as { status: string }).status).toBe("shipped");
    // The cancelled timer never fires into the finished instance.
    expect(sim.nextTimerAt()).toBeUndefined();
  });

  it("lets the timer win the race against the event", async () => {
    const id = sim.startNew("sim_orderSaga", { input: { id: "o5" } });
    await sim.advance(60 * 60_000 - 1);
    expect(sim.getStatus(id)?.runtimeStatus).toBe("Running");
    await sim.advance(1);
    const status = sim.getStatus(id)!;
    expect(status.output).toEqual({ status: "compensated", reason: "approval timed out" });
    expect(status.customStatus).toEqual({ stage: "compensating" });
    // A late approval finds the instance finished: 410 Gone, as the extension answers.
    expect(sim.raiseEvent(id, "Approval", { approved: true })).toBe("gone");
  });

  it("delivers an event raised before the orchestrator waits for it", async () => {
    const id = sim.startNew("sim_earlyEvent", { input: null });
    sim.raiseEvent(id, "Go", { early: true });
    await sim.runUntilIdle();
    const history = sim.history(id).map((e) => e.EventType);
    // The event reached the orchestrator before the activity finished; the SDK buffered it.
    expect(history.indexOf(EventType.EventRaised)).toBeLessThan(history.indexOf(EventType.TaskCompleted));
    expect(sim.getStatus(id)).toMatchObject({ runtimeStatus: "Completed", output: { picked: "picked:before-wait", go: { early: true } } });
  });

  it("fails an instance whose replay schedules a different activity (determinism check)", async () => {
    const id = sim.startNew("sim_shapeShifter", { input: null });
    await sim.runUntilIdle();
    expect(sim.getStatus(id)?.runtimeStatus).toBe("Running");
    script.shapeShift = true;
    await sim.advance(1000);
    const status = sim.getStatus(id)!;
    expect(status.runtimeStatus).toBe("Failed");
    expect(status.output).toMatch(/Non-Deterministic workflow detected: .*CallActivity 'sim_pick' with sequence ID 0.*CallActivity 'sim_pick_other'/);
  });

  it("fails an instance whose replay passes the same activity a different input (stricter than DTFx)", async () => {
    const id = sim.startNew("sim_shapeShifter", { input: null });
    await sim.runUntilIdle();
    script.shiftInput = true;
    await sim.advance(1000);
    const status = sim.getStatus(id)!;
    expect(status.runtimeStatus).toBe("Failed");
    expect(status.output).toMatch(/Non-Deterministic workflow detected: .*CallActivity 'sim_pick' with sequence ID 0.*CallActivity 'sim_pick' in its place/);
  });

  it("replays the same orchestrator deterministically: no failure when nothing changes", async () => {
    const id = sim.startNew("sim_shapeShifter", { input: null });
    await sim.advance(1000);
    expect(sim.getStatus(id)).toMatchObject({ runtimeStatus: "Completed", output: "picked:x" });
  });

  it("splits a long timer into chunks the way the extension does, with ids the SDK agrees on", async () => {
    const id = sim.startNew("sim_longTimer", { input: null });
    await sim.runUntilIdle();
    const day = 24 * 3600_000;
    const fired: number[] = [];
    for (;;) {
      const next = sim.nextTimerAt();
      if (next === undefined) break;
      fired.push((next - T0) / day);
      await sim.advance(next - sim.clock.now());
    }
    expect(fired).toEqual([3, 6, 10]);
    expect(scheduledIds(id)).toEqual(["timer#0", "timer#1", "timer#2"]);
    expect(sim.getStatus(id)).toMatchObject({ runtimeStatus: "Completed", output: "woke" });
  });

  it("does not split long timers under replay schema V2, where the SDK has no long-timer task", async () => {
    await h.close();
    h = await startDurableHarness({ clock: new ManualClock(T0), schemaVersion: 1 });
    sim = h.simulator;
    const id = sim.startNew("sim_longTimer", { input: null });
    await sim.runUntilIdle();
    expect(sim.nextTimerAt()! - T0).toBe(10 * 24 * 3600_000);
    expect((await sim.runToCompletion(id)).output).toBe("woke");
  });

  it("runs sub-orchestrations under Task.all and continues as new", async () => {
    const id = sim.startNew("sim_fanOut", { instanceId: "fan", input: { round: 1 } });
    const done = await sim.runToCompletion(id);
    expect(done).toMatchObject({
      runtimeStatus: "Completed",
      input: { round: 2, results: ["a:picked:a", "b:picked:b"] },
      output: { round: 2, results: ["a:picked:a", "b:picked:b"], previous: ["a:picked:a", "b:picked:b"] },
    });
    expect(sim.getStatus("fan:0")?.runtimeStatus).toBe("Completed");
    expect(sim.activityLog.filter((c) => c.name === "sim_pick")).toHaveLength(4);
  });

  it("fails an instance whose orchestrator throws, with the extension's message", async () => {
    const id = sim.startNew("sim_kaput", { input: null });
    const done = await sim.runToCompletion(id);
    expect(done.runtimeStatus).toBe("Failed");
    expect(done.output).toBe("Orchestrator function 'sim_kaput' failed: kaput");
  });

  it("fails an instance whose custom status is over the extension's 16 KB, outside the orchestrator's code", async () => {
    // {"note":"…"} is 11 characters around the note: 8,703 in all are 17,406 bytes of UTF-16, still 16 whole KB; 8,704 are 17.
    const fits = await sim.runToCompletion(sim.startNew("sim_bigStatus", { input: 8_704 - 12 }));
    expect(fits).toMatchObject({ runtimeStatus: "Completed", output: "kept" });
    const over = await sim.runToCompletion(sim.startNew("sim_bigStatus", { input: 8_704 - 11 }));
    expect(over.runtimeStatus).toBe("Failed");
    expect(over.output).toMatch(/The UTF-16 size of the JSON-serialized payload must not exceed 16 KB/);
    expect(sim.activityLog.filter((c) => c.input === "after")).toHaveLength(1);
  });

  it("fails an activity call whose function does not exist, as a catchable task failure", async () => {
    const done = await sim.runToCompletion(sim.startNew("sim_missingActivity", { input: null }));
    expect(done.output).toMatch(/The function 'sim_doesNotExist' doesn't exist/);
  });

  it("refuses to start a second instance under a running instance id", () => {
    sim.startNew("sim_waitForever", { instanceId: "dup" });
    expect(() => sim.startNew("sim_waitForever", { instanceId: "dup" })).toThrow(/already exists/);
    expect(() => sim.startNew("sim_notAnOrchestrator")).toThrow(/doesn't exist/);
  });

  it("is driven by the real DurableClient over loopback HTTP: start, status, raise, terminate, purge", async () => {
    const binding = df.input.durableClient();
    const ctx = new InvocationContext({ options: { extraInputs: [binding] } });
    ctx.extraInputs.set(binding, h.clientServer.binding);
    const client = df.getClient(ctx);

    const id = await client.startNew("sim_waitForever", { instanceId: "client-1", input: { hello: "world" } });
    expect(id).toBe("client-1");
    expect((await client.getStatus(id)).runtimeStatus).toBe("Pending");
    await sim.runUntilIdle();
    const running = await client.getStatus(id);
    expect(running).toMatchObject({ runtimeStatus: "Running", customStatus: "waiting", input: { hello: "world" } });

    await client.raiseEvent(id, "Never", { value: 42 });
    await sim.runUntilIdle();
    expect(await client.getStatus(id)).toMatchObject({ runtimeStatus: "Completed", output: { value: 42 } });
    // Raising into a finished instance resolves (the extension answers 410 and the client accepts it).
    await expect(client.raiseEvent(id, "Never", {})).resolves.toBeUndefined();

    await client.startNew("sim_waitForever", { instanceId: "client-2" });
    await sim.runUntilIdle();
    await client.terminate("client-2", "operator cancelled");
    await sim.runUntilIdle();
    expect(await client.getStatus("client-2")).toMatchObject({ runtimeStatus: "Terminated", output: "operator cancelled" });

    expect((await client.purgeInstanceHistory("client-2")).instancesDeleted).toBe(1);
    await expect(client.getStatus("client-2")).rejects.toThrow(/404/);
    await expect(client.startNew("sim_notAnOrchestrator")).rejects.toThrow();
  });

  it("serves a df.app.client HTTP starter through the host: 202 with management URLs", async () => {
    const res = await h.host.invokeHttp("sim_startOrder", { method: "POST", url: "/api/orders/77" });
    expect(res.status).toBe(202);
    const payload = res.json as { id: string; statusQueryGetUri: string };
    expect(payload.id).toBe("order-77");
    // createCheckStatusResponse rewrites the management URLs to the request's origin.
    expect(res.headers.location).toBe(payload.statusQueryGetUri);
    expect(payload.statusQueryGetUri).toMatch(/^http:\/\/localhost:7071\/runtime\/webhooks\/durabletask\/instances\/order-77\?/);
    expect(res.logs).toContainEqual({ level: "information", category: "user", message: "started order-77" });
    await sim.runUntilIdle();
    expect(sim.getStatus("order-77")?.customStatus).toEqual({ stage: "awaitingApproval" });
  });
});

describe("Durable simulator in realtime mode", () => {
  it("fires timers on the wall clock and runs work without being driven", async () => {
    const rt = await startDurableHarness({ mode: "realtime" });
    try {
      const id = rt.simulator.startNew("sim_orderSaga", { input: { id: "rt", approvalTimeoutMs: 50 } });
      const done = await rt.simulator.waitFor(id, { timeoutMs: 10_000 });
      expect(done.output).toEqual({ status: "compensated", reason: "approval timed out" });
      await expect(rt.simulator.runUntilIdle()).rejects.toThrow(/virtual mode/);
    } finally {
      await rt.close();
    }
  });
});
