/**
 * onboardNode: the Azure-side saga that turns an enrolled machine into a Ready AKS node (DESIGN §3).
 *
 *   reserve → openMailbox → ensureArcMachine → grantAccess → awaitSlot → issueKubeletCredential → runNodeSteps → verifyReady → finalize
 *
 * The Azure side (mailbox, Arc machine, grants) runs as soon as the node enrolled, paced by ARM's write budget; the
 * node side waits for one of the pool's `maxInFlight` slots (awaitSlot; clients/registry/in-flight.ts says why).
 *
 * Pure decisions: every effect is an activity, time is context.df's, retries are durable timers (azure-call.ts). Each step
 * appends what it created to `created`; on any failure the saga asks the agent to reset (best effort), removes the
 * created objects in reverse (role grants before the machine, the mailbox last), and marks the node Failed with the
 * error and what was removed. History carries ids and references only.
 */
import type * as df from "durable-functions";
import type { OrchestrationContext } from "durable-functions";
import type { CreatedObject } from "../activities/created-objects.js";
import { acts } from "../activities/handles.js";
import { machineIdFor, type NodeContext } from "../activities/node-context.js";
import { callAzure } from "./azure-call.js";
import { removeObject } from "./remove-object.js";
import { compensate } from "./compensate.js";
import { announce } from "./announce.js";
import { sagaRunId } from "./saga-run.js";
import { pollUntil } from "./poll.js";
import { runStepAttempt } from "./step-attempt.js";
import { timingFrom } from "./timing.js";

export const ONBOARD_NODE = "onboardNode";

export interface OnboardNodeInput {
  nodeId: string;
  pool: string;
  /** This run's id on the wire (see newRunId): fresh for every start, so a restarted saga never takes an old run's results. */
  run: string;
  /** The trace context of the request that started the onboarding (W3C); activities join that trace. */
  traceparent?: string;
  /** When the saga was started (ms since the epoch): the ARM pacer serves older sagas' writes first (pace-rank.ts). */
  startedAt?: number;
  /**
   * The node may have enrolled while the pool's slots were all taken: wait for one before node-side work. Set by every
   * start since nodes could wait; runs started before took their slot at enrolment, and replay without the wait.
   */
  waitsForSlot?: boolean;
}

/** The event a node that frees a slot raises at the saga of the node it handed the slot to. */
export const SLOT_HANDED_EVENT = "slot-handed";

export interface OnboardNodeOutput {
  status: "Ready" | "Failed";
  error?: { code: string; message: string };
  removed?: string[];
  remaining?: string[];
}

/**
 * The saga's progress as the admin API shows it (its custom status): the phase, the node step and attempt running, the
 * last error, and every node step attempt so far. Times are the orchestration's, so replays set the same status.
 */
export interface OnboardStatus {
  phase: string;
  step?: string;
  attempt?: number;
  lastError?: string;
  /** How many node steps the plan has (known once it is built): with the attempts, how far the node is. */
  stepCount?: number;
  attempts?: StepAttemptRecord[];
}

export interface StepAttemptRecord {
  step: string;
  attempt: number;
  outcome: "succeeded" | "failed" | "timedOut";
  startedAt: string;
  durationMs: number;
}

/** Attempts kept in the status: the newest. */
const MAX_ATTEMPTS_SHOWN = 40;
/**
 * The Durable extension fails an orchestration whose custom status is over 16 KB of UTF-16 (8,704 characters of JSON)
 * outside its code, so no compensation would run. A node's error message may be 4,096 characters of anything, which
 * JSON can double: the status keeps a shortened last error and drops its oldest attempts until it is well under.
 */
const STATUS_BUDGET_CHARS = 7_500;
const LAST_ERROR_SHOWN_CHARS = 1_000;

export function fitStatus(status: OnboardStatus): OnboardStatus {
  const lastError =
    status.lastError !== undefined && status.lastError.length > LAST_ERROR_SHOWN_CHARS
      ? `${status.lastError.slice(0, LAST_ERROR_SHOWN_CHARS)}… (${status.lastError.length} characters)`
      : status.lastError;
  let fitted: OnboardStatus = lastError === undefined ? status : { ...status, lastError };
  while (JSON.stringify(fitted).length > STATUS_BUDGET_CHARS && (fitted.attempts?.length ?? 0) > 0) {
    fitted = { ...fitted, attempts: fitted.attempts!.slice(1) };
  }
  return fitted;
}

/** A failure the saga understands: the code becomes the node's lastError code. */
class SagaError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export function* onboardNode(context: OrchestrationContext): Generator<df.Task, OnboardNodeOutput, unknown> {
  const input = context.df.getInput<OnboardNodeInput>();
  // Production timing until reserve answers with the run's timing in full (its history then holds it): only reserve's
  // own retries, and a compensation after reserve failed, run by the code's constants.
  let timing = timingFrom(undefined);
  const created: CreatedObject[] = [];
  let status: OnboardStatus = { phase: "reserve" };
  const show = (next: Partial<OnboardStatus>) => {
    status = fitStatus({ ...status, ...next });
    context.df.setCustomStatus(status);
  };
  let ctx: NodeContext | undefined;
  let cluster: { apiServer: string; kubernetesVersion: string } | undefined;
  // This run's identity on the wire: results of an earlier run of the same instance can never satisfy its waits.
  const run = input.run;
  const sagaId = sagaRunId(context.df.instanceId, run);

  try {
    show({ phase: "reserve" });
    // Retried like any registry call: a transient failure must not fail the onboarding (reserve is idempotent).
    ctx = yield* callAzure(context, timing, acts.reserve, { nodeId: input.nodeId, pool: input.pool });
    timing = timingFrom(ctx.timing);

    show({ phase: "openMailbox" });
    created.push(yield* callAzure(context, timing, acts.openMailbox, { nodeId: ctx.nodeId }));

    show({ phase: "ensureArcMachine" });
    const machineId = machineIdFor(ctx);
    const getPrincipal = function* () {
      return (yield* callAzure(context, timing, acts.getArcPrincipal, { machineId })) ?? undefined;
    };
    const noIdentity = () => new SagaError("ArcIdentityMissing", `the Arc machine has no identity after ${timing.principalPoll.attempts} looks`);
    let principalId: string;
    if (ctx.adoptedMachineId !== undefined) {
      // Created by azcmagent on the node: read, never written or deleted by the service.
      principalId = yield* pollUntil(context, timing.principalPoll, getPrincipal, noIdentity);
    } else {
      const put = yield* callAzure(context, timing, acts.putArcMachine, { context: ctx });
      created.push(put.machine);
      // ARM answers the PUT with the new identity's principal: read it again only if this answer had none.
      principalId = yield* pollUntil(context, timing.principalPoll, getPrincipal, noIdentity, { answer: put.principalId ?? undefined });
    }

    show({ phase: "grantAccess" });
    for (const grant of ctx.roleGrants) {
      const scope = grant.scope === "cluster" ? ctx.clusterResourceId : ctx.arc.resourceGroupId;
      const granted = yield* callAzure(context, timing, acts.grantRole, { nodeId: ctx.nodeId, scope, roleDefinitionGuid: grant.roleDefinitionId, principalId });
      // null: the grant was there already under someone else's name; it is theirs, never removed by this saga.
      if (granted) created.push(granted);
    }

    if (input.waitsForSlot) {
      show({ phase: "awaitSlot" });
      let waited = false;
      const takeSlot = function* () {
        const held = yield* callAzure(context, timing, acts.takeSlot, {
          nodeId: ctx!.nodeId,
          pool: ctx!.pool,
          waited,
          at: context.df.currentUtcDateTime.toISOString(),
        });
        waited ||= !held;
        return held || undefined;
      };
      const noSlot = () => new SagaError("SlotWaitExpired", `no slot of pool ${ctx!.pool} came free after ${timing.slotPoll.attempts} looks`);
      yield* pollUntil(context, timing.slotPoll, takeSlot, noSlot, undefined, SLOT_HANDED_EVENT);
    }

    show({ phase: "issueKubeletCredential" });
    cluster = yield* callAzure(context, timing, acts.clusterInfo, { clusterResourceId: ctx.clusterResourceId });
    yield* callAzure(context, timing, acts.ensurePoolRbac, { clusterResourceId: ctx.clusterResourceId, pool: ctx.pool });
    created.push(...(yield* callAzure(context, timing, acts.issueBootstrapToken, { context: ctx, ttlMs: 2 * 3600_000 })));

    show({ phase: "runNodeSteps" });
    created.push(yield* callAzure(context, timing, acts.expectKubeNode, { nodeId: ctx.nodeId, cluster: ctx.clusterResourceId }));
    const steps = yield* callAzure(context, timing, acts.planSteps, { context: ctx, ...cluster });
    let kubeletNode: string | undefined;
    show({ stepCount: steps.length });
    for (const step of steps) {
      for (let attempt = 1; ; attempt++) {
        show({ step: step.stepId, attempt });
        const startedAt = context.df.currentUtcDateTime;
        const result = yield* runStepAttempt(context, timing, {
          context: ctx,
          sagaId,
          run,
          cluster,
          stepId: step.stepId,
          attempt,
          timeoutMs: step.timeoutMs * timing.stepTimeoutScale,
        });
        const record: StepAttemptRecord = {
          step: step.stepId,
          attempt,
          outcome: result ? (result.outcome === "succeeded" ? "succeeded" : "failed") : "timedOut",
          startedAt: startedAt.toISOString(),
          durationMs: context.df.currentUtcDateTime.getTime() - startedAt.getTime(),
        };
        show({ attempts: [...(status.attempts ?? []), record].slice(-MAX_ATTEMPTS_SHOWN) });
        if (result && result.outcome === "succeeded") {
          if (typeof result.output?.["kubeletNode"] === "string") kubeletNode = result.output["kubeletNode"];
          break;
        }
        const why = result
          ? `${result.error?.code ?? "StepFailed"}: ${result.error?.message ?? "failed"}`
          : `no result within ${step.timeoutMs * timing.stepTimeoutScale} ms`;
        show({ lastError: `${step.stepId} attempt ${attempt}: ${why}` });
        const retryable = !result || result.error?.retryable === true;
        if (!retryable || attempt >= step.maxAttempts)
          throw new SagaError(result ? "NodeStepFailed" : "NodeStepTimedOut", `step ${step.stepId} failed after ${attempt} attempt(s): ${why}`);
      }
    }

    show({ phase: "verifyReady", step: undefined, attempt: undefined });
    // The kubelet step reports whom the kubelet's client certificate names: that is the Node it registers, at once.
    if (kubeletNode !== undefined && kubeletNode !== ctx.nodeId)
      throw new SagaError(
        "KubeletNameMismatch",
        `the kubelet's client certificate is for node ${kubeletNode}, not ${ctx.nodeId}: its Node would never be this one`,
      );
    const checkReady = function* () {
      return (yield* callAzure(context, timing, acts.checkNodeReady, { clusterResourceId: ctx!.clusterResourceId, nodeName: ctx!.nodeId })) || undefined;
    };
    yield* pollUntil(
      context,
      timing.readyPoll,
      checkReady,
      () => new SagaError("NodeNotReady", `the Node object is not Ready after ${timing.readyPoll.attempts} checks`),
    );

    show({ phase: "finalize" });
    // The kubelet has its client certificate: the bootstrap token and its sealed copy have done their job.
    for (const o of created.filter((c) => c.kind === "bootstrapToken" || c.kind === "oneTimeSecret")) {
      yield* removeObject(context, timing, ctx.nodeId, o);
    }
    // false: the node was decommissioned meanwhile (its offboarding owns it now). Histories from before markReady
    // answered hold no answer (undefined), which was a Ready node.
    if ((yield* callAzure(context, timing, acts.markReady, { nodeId: ctx.nodeId })) === false)
      throw new SagaError("NodeTakenOver", "the node is no longer onboarding (decommissioned meanwhile); it was not marked Ready");
    yield* announce(context, timing, { kind: "ready", nodeId: ctx.nodeId, run });
    show({ phase: "done" });
    return { status: "Ready" };
  } catch (error) {
    // A precise error: which phase (and step), and what failed there.
    const code = error instanceof SagaError ? error.code : `${status.phase}Failed`;
    const message = `${status.phase}${status.step ? ` (${status.step})` : ""}: ${error instanceof Error ? error.message : String(error)}`;
    show({ phase: "compensating", lastError: message });
    const hasMailbox = created.some((c) => c.kind === "mailbox");
    const { removed, remaining } = yield* compensate(context, timing, {
      nodeId: input.nodeId,
      code,
      message,
      known: created,
      run,
      reset: ctx && hasMailbox ? { context: ctx, sagaId, run } : undefined,
    });
    show({ phase: "failed" });
    return { status: "Failed", error: { code, message }, removed, remaining };
  }
}
