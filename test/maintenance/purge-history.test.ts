/**
 * The daily purge of finished sagas' Durable history, through the timer function and the real DurableClient against
 * the simulator's management API, on the simulator's virtual clock (the services' clock is the same one).
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { enrolRequest, newNode, startApp, useStandInSaga, type TestApp } from "../function-app/index.js";

useStandInSaga();

const DAY = 86_400_000;
let app: TestApp;

beforeEach(async () => {
  app = await startApp();
  app.useServices({ now: () => new Date(app.simulator.clock.now()) });
  await app.createPool("edge", { maxInFlight: 10 });
});
afterEach(() => app.close());

async function enrolled(token: string): Promise<string> {
  // Signed at the services' (virtual) time, as a node whose clock agrees with the service's.
  const node = newNode();
  const res = await app.call(
    "POST",
    "/api/enrol",
    await enrolRequest(node, { token, facts: node.facts, publicKey: node.publicKey }, { now: new Date(app.simulator.clock.now()) }),
  );
  expect(res.status).toBe(201);
  await app.simulator.runUntilIdle();
  return (res.json as { nodeId: string }).nodeId;
}

async function finish(nodeId: string): Promise<void> {
  app.simulator.raiseEvent(nodeId, "test-finish", "done");
  await app.simulator.runUntilIdle();
}

describe("purgeHistory timer", () => {
  it("purges finished sagas older than DURABLE_HISTORY_RETENTION_DAYS, never a running one or a recent one", async () => {
    const token = await app.createToken("edge", { maxUses: 5 });
    const oldFinished = await enrolled(token);
    const oldTerminated = await enrolled(token);
    const oldRunning = await enrolled(token);
    await finish(oldFinished);
    app.simulator.terminate(oldTerminated, "test");
    await app.simulator.runUntilIdle();

    await app.simulator.advance(31 * DAY);
    const recentFinished = await enrolled(await app.createToken("edge"));
    await finish(recentFinished);
    expect(app.simulator.getStatus(oldTerminated)?.runtimeStatus).toBe("Terminated");

    const run = await app.host.invoke("purgeHistory", { json: JSON.stringify({ isPastDue: false }) });
    expect(run.logs.map((l) => l.message).join("\n")).toContain("purgeHistory: 2 finished instance(s) created before");
    expect(app.simulator.getStatus(oldFinished)).toBeUndefined();
    expect(app.simulator.getStatus(oldTerminated)).toBeUndefined();
    expect(app.simulator.getStatus(oldRunning)?.runtimeStatus).toBe("Running");
    expect(app.simulator.getStatus(recentFinished)?.runtimeStatus).toBe("Completed");

    // Nothing left to purge: the extension answers 404, which the client reads as zero.
    const again = await app.host.invoke("purgeHistory", { json: JSON.stringify({ isPastDue: false }) });
    expect(again.logs.map((l) => l.message).join("\n")).toContain("purgeHistory: 0 finished instance(s)");
  });

  it("takes its retention from the setting", async () => {
    process.env.DURABLE_HISTORY_RETENTION_DAYS = "2";
    try {
      await app.close();
      app = await startApp();
      app.useServices({ now: () => new Date(app.simulator.clock.now()) });
      await app.createPool("edge", { maxInFlight: 10 });
      const finished = await enrolled(await app.createToken("edge"));
      await finish(finished);
      await app.simulator.advance(1 * DAY);
      await app.host.invoke("purgeHistory", { json: JSON.stringify({ isPastDue: false }) });
      expect(app.simulator.getStatus(finished)?.runtimeStatus).toBe("Completed");
      await app.simulator.advance(2 * DAY);
      await app.host.invoke("purgeHistory", { json: JSON.stringify({ isPastDue: false }) });
      expect(app.simulator.getStatus(finished)).toBeUndefined();
    } finally {
      delete process.env.DURABLE_HISTORY_RETENTION_DAYS;
    }
  });
});
