/**
 * The agent's host side as the sandbox runs it: the real executors (node-agent/src/run-step.ts), the real manifest,
 * and the contract's per-kind params schemas. One adaptation, because every sandbox node lives in this one process
 * and so in one network namespace: preflight's port check binds 127.0.0.1:10250 for real, and two nodes checking at
 * the same moment would see each other's probe. Preflight steps therefore run one at a time across the sandbox's
 * nodes (separate machines never collide like that).
 */
import type { HostSide } from "../../node-agent/src/agent.js";
import { manifestDigestAt } from "../../node-agent/src/manifest.js";
import type { RunStep } from "../../node-agent/src/ports.js";
import { runStep } from "../../node-agent/src/run-step.js";
import { StepParamsSchemas } from "../../contract/step-params.js";

let preflightQueue: Promise<unknown> = Promise.resolve();

const sandboxRunStep: RunStep = (envelope, deps) => {
  if (envelope.kind !== "preflight") return runStep(envelope, deps);
  const run = preflightQueue.then(() => runStep(envelope, deps));
  preflightQueue = run.catch(() => undefined);
  return run;
};

export const sandboxHostSide: HostSide = {
  runStep: sandboxRunStep,
  manifestDigest: manifestDigestAt,
  paramsSchemas: StepParamsSchemas,
};
