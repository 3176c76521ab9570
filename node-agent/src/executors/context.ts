/** What every executor gets: its step, the host ports, and the manifest it records changes in before making them. */
import type { JsonObject } from "../../../contract/json.js";
import type { Manifest } from "../manifest.js";
import type { StepDeps } from "../ports.js";
import type { ClockReference } from "../preflight.js";

export interface ExecutorContext {
  stepId: string;
  deps: StepDeps;
  manifest: Manifest;
  /** The verified envelope's issuedAt (service clock) and this node's clock when the step started. */
  clockReference: ClockReference;
}

export type Executor<P> = (params: P, ctx: ExecutorContext) => Promise<JsonObject>;
