/**
 * The sagas, registered under the names their starters use (enrolment, decommission, the sweeper). They take no
 * services: every effect is an activity (functions/activities.ts). Each is observed (a span per episode in the trace its
 * input carries, its end as a metric) from outside, so the sagas themselves stay free of telemetry.
 */
import * as df from "durable-functions";
import { OFFBOARD_NODE, offboardNode } from "../orchestrations/offboard/offboard-node.js";
import { COMPENSATE_NODE, compensateNode } from "../orchestrations/onboard/compensate.js";
import { ONBOARD_NODE, onboardNode } from "../orchestrations/onboard/onboard-node.js";
import { observedSaga } from "../orchestrations/observability/saga-episodes.js";

export function registerOrchestrations(): void {
  df.app.orchestration(ONBOARD_NODE, observedSaga(ONBOARD_NODE, onboardNode));
  df.app.orchestration(OFFBOARD_NODE, observedSaga(OFFBOARD_NODE, offboardNode));
  df.app.orchestration(COMPENSATE_NODE, observedSaga(COMPENSATE_NODE, compensateNode));
}
