/** What the running agent reports as it goes: the CLI prints these, the sandbox shows them live, tests wait on them. */
import type { StepOutcome } from "../../contract/step-result.js";

export interface StepRef {
  sagaId: string;
  stepId: string;
  attempt: number;
}

export type AgentEvent =
  | { type: "waiting-for-approval"; status: string; nextCheckInSeconds: number }
  | { type: "mailbox-connected"; namespace: string; queue: string; credentialsExpireAt: string }
  | { type: "credentials-refreshed"; expiresAt: string; refreshAfter: string }
  /** The machine's facts changed since the service last recorded them, and the service has the new ones now. */
  | { type: "facts-reported"; hostname: string; os: string; kernel: string }
  | ({ type: "step-started"; kind: string } & StepRef)
  | ({ type: "step-log"; line: string } & StepRef)
  | ({ type: "step-finished"; kind: string; outcome: StepOutcome; errorCode?: string } & StepRef)
  /** A redelivered envelope whose result was already produced: the same signed result went out again. */
  | ({ type: "result-resent"; outcome: StepOutcome } & StepRef)
  /** An envelope the agent would not run. `failed-result`: a signed failed result was sent; else it was dead-lettered. */
  | { type: "envelope-refused"; code: string; message: string; disposition: "failed-result" | "dead-lettered"; step?: StepRef }
  | { type: "error"; where: string; message: string }
  /** Drain mode: the node is Ready and its queue was quiet, so `run` ends; `timer` starts it again. */
  | { type: "drained"; status: string; timer: string }
  | { type: "stopped" };

export type EventSink = (event: AgentEvent) => void;
