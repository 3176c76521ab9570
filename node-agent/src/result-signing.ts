/** The node's signed answer to one step attempt. */
import { ContractError, SecretInMessageError } from "../../contract/errors.js";
import { buildStepResult, type StepError, type StepResult } from "../../contract/step-result.js";
import type { StepRef } from "./agent-events.js";
import type { MailboxLoopOptions } from "./mailbox-loop-options.js";

export type Outcome = { outcome: "succeeded"; output: StepResult["output"] } | { outcome: "failed"; error: StepError };

export function signResult(
  o: Pick<MailboxLoopOptions, "identity" | "now"> & { nodeId: string },
  ref: StepRef,
  startedAt: Date,
  outcome: Outcome,
  manifestDigest: string,
  /** The envelope's traceparent, echoed (signed with the rest) so the service can show the step in the onboarding's trace. */
  traceparent?: string,
): StepResult {
  const common = {
    nodeId: o.nodeId,
    ...ref,
    startedAt,
    finishedAt: laterOf(startedAt, o.now()),
    manifestDigest,
    ...(traceparent !== undefined ? { traceparent } : {}),
  };
  const privateKey = o.identity.privateKey;
  try {
    return outcome.outcome === "succeeded"
      ? buildStepResult({ ...common, outcome: "succeeded", ...(outcome.output !== undefined ? { output: outcome.output } : {}) }, { privateKey })
      : buildStepResult({ ...common, outcome: "failed", error: outcome.error }, { privateKey });
  } catch (error) {
    // Output or error text that looks like a secret is never sent; the step is reported failed without it.
    if (!(error instanceof SecretInMessageError) && !(error instanceof ContractError)) throw error;
    return buildStepResult(
      { ...common, outcome: "failed", error: { code: error.code, message: `the step's result could not be sent as is: ${error.code}`, retryable: false } },
      { privateKey },
    );
  }
}

function laterOf(a: Date, b: Date): Date {
  return b.getTime() >= a.getTime() ? b : a;
}
