/** Registers the onboarding saga and its activities (imported by the app entry). */
import "./activities.js";
import "./onboard-node.js";
import "../offboard/offboard-node.js";
import "./compensate.js";

export { ONBOARD_NODE, type OnboardNodeInput, type OnboardNodeOutput } from "./onboard-node.js";
export { OFFBOARD_NODE, offboardInstanceId, type OffboardNodeInput } from "../offboard/offboard-node.js";
export { COMPENSATE_NODE, compensateInstanceId, type CompensateNodeInput } from "./compensate.js";
