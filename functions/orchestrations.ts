/**
 * The sagas, registered under the names their starters use (enrolment, decommission, the sweeper). They take no
 * services: every effect is an activity (functions/activities.ts).
 */
import * as df from "durable-functions";
import { OFFBOARD_NODE, offboardNode } from "../orchestrations/offboard/offboard-node.js";
import { COMPENSATE_NODE, compensateNode } from "../orchestrations/onboard/compensate.js";
import { ONBOARD_NODE, onboardNode } from "../orchestrations/onboard/onboard-node.js";

export function registerOrchestrations(): void {
  df.app.orchestration(ONBOARD_NODE, onboardNode);
  df.app.orchestration(OFFBOARD_NODE, offboardNode);
  df.app.orchestration(COMPENSATE_NODE, compensateNode);
}
