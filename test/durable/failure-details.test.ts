import * as df from "durable-functions";
import type { OrchestrationContext } from "durable-functions";
import { afterAll, describe, expect, it } from "vitest";
import { startDurableHarness } from "./harness.js";

class ArmThrottled extends Error {
  override name = "ArmThrottled";
  constructor(readonly retryAfterSeconds: number) {
    super("ARM said 429");
  }
}

df.app.setExceptionPropertiesProvider({
  getExceptionProperties: (error: unknown) =>
    error instanceof ArmThrottled ? { retryAfterSeconds: error.retryAfterSeconds, code: "TooManyRequests" } : undefined,
});
afterAll(() => df.app.setExceptionPropertiesProvider(null as never));

df.app.activity("fd_throttled", {
  handler: () => {
    throw new ArmThrottled(17);
  },
});
df.app.orchestration("fd_inspectFailure", function* (context: OrchestrationContext) {
  try {
    yield context.df.callActivity("fd_throttled");
    return null;
  } catch (error) {
    const failure = (error as { failureDetails?: { errorType: string; errorMessage: string; properties?: unknown } }).failureDetails;
    return { message: (error as Error).message, errorType: failure?.errorType, properties: failure?.properties };
  }
});

describe("failure details across the activity boundary", () => {
  it("carries the ExceptionPropertiesProvider payload into TaskFailedError.failureDetails", async () => {
    const h = await startDurableHarness();
    try {
      const done = await h.simulator.runToCompletion(h.simulator.startNew("fd_inspectFailure"));
      expect(done.output).toEqual({
        message: "ArmThrottled: ARM said 429",
        errorType: "ArmThrottled",
        properties: { retryAfterSeconds: 17, code: "TooManyRequests" },
      });
    } finally {
      await h.close();
    }
  });
});
