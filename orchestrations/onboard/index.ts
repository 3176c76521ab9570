/** Registers the onboarding saga and its activities (imported by the app entry). */
import "./activities.js";
import "./onboard-node.js";

export { ONBOARD_NODE, type OnboardNodeInput, type OnboardNodeOutput } from "./onboard-node.js";
