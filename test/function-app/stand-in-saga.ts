/**
 * Enrolment tests are about enrolment: this replaces the onboarding saga with one that runs until told to finish, so
 * they can see "a saga started, under this id, with this input" without driving the whole saga. Call it after the
 * app is loaded (the last registration of a name wins), e.g. at the top of a test file that imports the harness.
 */
import * as df from "durable-functions";
import type { OrchestrationContext } from "durable-functions";

export function useStandInSaga(): void {
  df.app.orchestration("onboardNode", function* (context: OrchestrationContext) {
    context.df.setCustomStatus({ phase: "test-saga" });
    const outcome: unknown = yield context.df.waitForExternalEvent("test-finish");
    return outcome;
  });
}
