/** The executors the service loop runs steps with on a real node: node-agent/src/run-step.ts and its manifest. */
import { StepParamsSchemas } from "../../contract/step-params.js";
import type { HostSide } from "./agent.js";
import { manifestDigestAt } from "./manifest.js";
import { runStep } from "./run-step.js";

export const realHostSide: HostSide = { runStep, manifestDigest: manifestDigestAt, paramsSchemas: StepParamsSchemas };
