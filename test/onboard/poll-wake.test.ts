/**
 * pollUntil with a wake event (orchestrations/onboard/poll.ts), in the real durable-functions replay engine under the
 * Durable simulator: a wake ends a wait at once, and a wake raised while the question is being asked (it reaches the
 * wait of a round the timer ended, which the replay engine still holds open) makes the saga ask again at once instead
 * of sleeping through a whole interval holding what it waited for.
 */
import * as df from "durable-functions";
import type { OrchestrationContext } from "durable-functions";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { pollUntil } from "../../orchestrations/onboard/poll.js";
import { startDurableHarness, type DurableHarness } from "../durable/index.js";
import { ManualClock } from "../support/index.js";

const T0 = Date.UTC(2030, 0, 1);
const WAKE = "wake";
const POLL = { firstIntervalMs: 1_000, maxIntervalMs: 1_000, attempts: 6 };

/** What each question answers (by its number, from 1), and a wake the test raises while a given question runs. */
const script = { answerFrom: Number.POSITIVE_INFINITY, wakeDuring: 0, asked: 0, raise: (_id: string) => {} };

df.app.activity("test_pollAsk", {
  handler: (input: { instanceId: string }) => {
    script.asked++;
    if (script.asked === script.wakeDuring) script.raise(input.instanceId);
    return script.asked >= script.answerFrom ? "yes" : null;
  },
});
df.app.orchestration("test_pollWake", function* (context: OrchestrationContext) {
  const ask = function* () {
    return ((yield context.df.callActivity("test_pollAsk", { instanceId: context.df.instanceId })) as string | null) ?? undefined;
  };
  return yield* pollUntil(context, POLL, ask, () => new Error("no answer"), undefined, WAKE);
});

let h: DurableHarness;
beforeEach(async () => {
  Object.assign(script, { answerFrom: Number.POSITIVE_INFINITY, wakeDuring: 0, asked: 0 });
  h = await startDurableHarness({ clock: new ManualClock(T0) });
  script.raise = (id) => void h.simulator.raiseEvent(id, WAKE);
});
afterEach(async () => {
  await h.close();
});

const askedAt = () => h.simulator.activityLog.filter((c) => c.name === "test_pollAsk").map((c) => c.startedAt - T0);

describe("pollUntil with a wake event", () => {
  it("asks again at once when woken during a wait", async () => {
    script.answerFrom = 2;
    const id = h.simulator.startNew("test_pollWake", { instanceId: "woken" });
    await h.simulator.runUntilIdle();
    await h.simulator.advance(400);
    h.simulator.raiseEvent(id, WAKE);
    await h.simulator.runUntilIdle();
    expect(h.simulator.getStatus(id)?.output).toBe("yes");
    expect(askedAt()).toEqual([0, 400]);
  });

  it("asks again at once when the wake came while it was asking after a timer ended its wait", async () => {
    // Question 1 at 0 (no), the timer ends the first wait at 1 s, question 2 (no) runs while the wake is raised.
    script.answerFrom = 3;
    script.wakeDuring = 2;
    const id = h.simulator.startNew("test_pollWake", { instanceId: "late" });
    await h.simulator.runUntilIdle();
    await h.simulator.advance(1_000);
    await h.simulator.runUntilIdle();
    expect(h.simulator.getStatus(id)?.output).toBe("yes");
    // Question 3 right after question 2, not a whole interval later.
    expect(askedAt()).toEqual([0, 1_000, 1_000]);
  });

  it("without wakes, asks at the poll's intervals and gives up after its last question", async () => {
    const id = h.simulator.startNew("test_pollWake", { instanceId: "never" });
    for (let i = 0; i < 10; i++) {
      await h.simulator.runUntilIdle();
      await h.simulator.advance(1_000);
    }
    expect(h.simulator.getStatus(id)?.runtimeStatus).toBe("Failed");
    expect(askedAt()).toEqual([0, 1_000, 2_000, 3_000, 4_000, 5_000]);
  });
});
