/**
 * One message from the node's queue, start to settlement.
 *
 * Per message: verify (service key, this node, contract version, expiry, per-kind params) → if this step attempt was
 * already answered, send the remembered result again → else record the step as current, run it, remember the signed
 * result (state.json, atomically) → send it to the results queue → and only then complete the message. A crash at
 * any point therefore leads to a redelivery that either re-runs an idempotent step whose result was never recorded,
 * or re-sends the recorded result; never a second run after a result went out.
 *
 * What is answered, and what is not (envelope-trust.ts): the node signs a result only for a message the service sent
 * to it. Dead-lettered with the reason, logged, and never answered: a message that is not a JSON object or carries
 * no signature block (reason: the contract's code, e.g. `unsupported_version`, `schema_invalid`), a signature that
 * does not verify against the service key pinned at enrolment (forged, altered, another key: `bad_signature`),
 * another node's envelope (`wrong_node`), an expired one (`envelope_expired`: the saga stopped waiting for it), and a
 * verified attempt answered earlier whose result is no longer remembered, i.e. after a reset (`already_answered`: a
 * replay; re-sending the old result would report as applied what the reset undid). Answered with a signed failed result: a verified envelope the agent
 * will not run (a newer version, an unknown kind, bad params).
 *
 * Refused by this node's clock only (`clock_skew`, answered, never run): a verified envelope issued in this node's
 * future beyond the skew, or expired by this node's clock but no longer ago than the agent keeps its replay records
 * (the envelope's expiry plus ENVELOPE_SKEW_SECONDS). The agent cannot tell "my clock is ahead" from "an old envelope
 * came back", and need not: the step is not run, the answer is remembered like any result (a redelivery gets the same
 * signed failure, an attempt answered before gets its remembered result, one answered before a reset is dead-lettered
 * as above), and the service takes only the first result of an attempt it still waits for. If it still waits, service
 * time is before the expiry, so the node's clock is ahead by at least the amount the message names. Older than that
 * window, the replay records may be gone, so an expired envelope is dead-lettered (`envelope_expired`) as before.
 */
import type { KeyObject } from "node:crypto";
import type { ServiceBusReceivedMessage } from "@azure/service-bus";
import { ContractError, EnvelopeExpiredError, EnvelopeNotYetValidError } from "../../contract/errors.js";
import { AttemptSchema, IdentifierSchema, TraceparentSchema } from "../../contract/fields.js";
import { verifyStepEnvelope, type StepEnvelope } from "../../contract/step-envelope.js";
import type { StepError } from "../../contract/step-result.js";
import type { StepRef } from "./agent-events.js";
import { rememberedResult, wasAnswered, withResult } from "./agent-state.js";
import { whyUnanswerable } from "./envelope-trust.js";
import { sendResult, settle, type Connection } from "./mailbox-connection.js";
import type { MailboxLoopOptions } from "./mailbox-loop-options.js";
import { messageOf } from "./message-of.js";
import type { StepRunResult } from "./ports.js";
import { signResult } from "./result-signing.js";

/** Envelope clock skew the agent tolerates (the contract's maximum); a remembered result is kept that much longer. */
const ENVELOPE_SKEW_SECONDS = 300;
/** Skew envelopes are verified with. */
const VERIFY_SKEW_SECONDS = 60;

export type EnvelopeContext = Pick<
  MailboxLoopOptions,
  | "store"
  | "identity"
  | "api"
  | "runStep"
  | "manifestDigest"
  | "root"
  | "host"
  | "ca"
  | "paramsSchemas"
  | "archiveLimits"
  | "now"
  | "onEvent"
  | "settleTimeoutMs"
> & {
  nodeId: string;
  servicePublicKey: KeyObject;
};

export async function handleEnvelope(ctx: EnvelopeContext, connection: Connection, message: ServiceBusReceivedMessage): Promise<void> {
  const now = ctx.now();
  let envelope: StepEnvelope;
  try {
    envelope = verifyStepEnvelope(message.body, {
      servicePublicKey: ctx.servicePublicKey,
      nodeId: ctx.nodeId,
      now,
      maxSkewSeconds: VERIFY_SKEW_SECONDS,
      ...(ctx.paramsSchemas ? { paramsSchemas: ctx.paramsSchemas } : {}),
    });
  } catch (error) {
    if (!(error instanceof ContractError)) throw error;
    const skewed = refusedByClockOnly(ctx, message.body, error, now);
    if (skewed) return answerClockSkew(ctx, connection, message, skewed, now);
    const unanswerable = whyUnanswerable(message.body, error, {
      servicePublicKey: ctx.servicePublicKey,
      nodeId: ctx.nodeId,
      now,
      skewSeconds: VERIFY_SKEW_SECONDS,
    });
    return unanswerable ? deadLetter(ctx, connection, message, unanswerable) : refuse(ctx, connection, message, error);
  }
  const ref: StepRef = { sagaId: envelope.sagaId, stepId: envelope.stepId, attempt: envelope.attempt };

  if (await answeredBefore(ctx, connection, message, ref, now)) return;

  const startedAt = ctx.now();
  await ctx.store.update((s) => ({ ...s, current: { ...ref, kind: envelope.kind, startedAt: startedAt.toISOString() } }));
  ctx.onEvent({ type: "step-started", ...ref, kind: envelope.kind });
  let run: StepRunResult;
  try {
    run = await ctx.runStep(envelope, {
      root: ctx.root,
      host: ctx.host,
      secrets: ctx.api,
      ...(ctx.ca !== undefined ? { ca: ctx.ca } : {}),
      ...(ctx.archiveLimits ? { archiveLimits: ctx.archiveLimits } : {}),
      now: ctx.now,
      log: (line) => ctx.onEvent({ type: "step-log", ...ref, line }),
    });
  } catch (error) {
    // RunStep reports step failures as results; a throw is the agent's own bug or an unexpected host error.
    run = { outcome: "failed", error: { code: "agent_error", message: messageOf(error), retryable: true }, manifestDigest: await ctx.manifestDigest() };
  }
  const result = signResult(
    ctx,
    ref,
    startedAt,
    run.outcome === "succeeded" ? { outcome: "succeeded", output: run.output } : { outcome: "failed", error: run.error },
    run.manifestDigest,
    envelope.traceparent,
  );
  const keepUntil = keepUntilOf(envelope);
  await ctx.store.update((s) => {
    // After a successful reset nothing earlier is applied any more; its remembered results are history (the attempts
    // stay in `answered`, so a replay of one is still refused).
    const base = envelope.kind === "reset" && result.outcome === "succeeded" ? { ...s, results: [] } : s;
    const { current: _current, ...rest } = base;
    return withResult(rest, { ...ref, keepUntil, result }, ctx.now());
  });
  await sendResult(connection, result);
  await settle(ctx, () => connection.receiver.completeMessage(message), ref);
  ctx.onEvent({
    type: "step-finished",
    ...ref,
    kind: envelope.kind,
    outcome: result.outcome,
    ...(result.outcome === "failed" ? { errorCode: result.error.code } : {}),
  });
}

/** How long an answer is remembered: until a redelivery of its envelope is refused anyway (expiry plus the largest skew). */
function keepUntilOf(envelope: StepEnvelope): string {
  return new Date(Date.parse(envelope.expiresAt) + ENVELOPE_SKEW_SECONDS * 1000).toISOString();
}

/**
 * An attempt answered before: its remembered result is sent again, or, when a reset forgot it, the message is
 * dead-lettered (a replay). True when the message was settled here.
 */
async function answeredBefore(ctx: EnvelopeContext, connection: Connection, message: ServiceBusReceivedMessage, ref: StepRef, now: Date): Promise<boolean> {
  const state = await ctx.store.require();
  const seen = rememberedResult(state, ref, now);
  if (seen) {
    await sendResult(connection, seen.result);
    await settle(ctx, () => connection.receiver.completeMessage(message), ref);
    ctx.onEvent({ type: "result-resent", ...ref, outcome: seen.result.outcome });
    return true;
  }
  if (wasAnswered(state, ref, now)) {
    const why = {
      code: "already_answered",
      message: `step ${ref.stepId} (attempt ${ref.attempt}) of ${ref.sagaId} was answered before a reset; it is not run again`,
    };
    await deadLetter(ctx, connection, message, why, ref);
    return true;
  }
  return false;
}

/**
 * The envelope, when `refusal` is only this node's clock disagreeing with its validity window and the clock path may
 * answer it (see the file comment): signature and node verified again independently of any clock (at its own
 * issuedAt), and not expired longer ago than its replay records are kept.
 */
function refusedByClockOnly(ctx: EnvelopeContext, raw: unknown, refusal: ContractError, now: Date): StepEnvelope | undefined {
  if (!(refusal instanceof EnvelopeExpiredError) && !(refusal instanceof EnvelopeNotYetValidError)) return undefined;
  const issuedAt = typeof raw === "object" && raw !== null ? Date.parse(String((raw as Record<string, unknown>)["issuedAt"])) : Number.NaN;
  if (Number.isNaN(issuedAt)) return undefined;
  let envelope: StepEnvelope;
  try {
    envelope = verifyStepEnvelope(raw, { servicePublicKey: ctx.servicePublicKey, nodeId: ctx.nodeId, now: new Date(issuedAt), maxSkewSeconds: 0 });
  } catch (error) {
    if (error instanceof ContractError) return undefined;
    throw error;
  }
  if (refusal instanceof EnvelopeExpiredError && now.getTime() >= Date.parse(keepUntilOf(envelope))) return undefined;
  return envelope;
}

/** The failed result for an envelope refused by this node's clock only, with the offset it measured. */
function clockSkewError(envelope: StepEnvelope, now: Date): StepError {
  const seconds = (ms: number) => `${Math.round(ms / 1000)} s`;
  const offset = now.getTime() - Date.parse(envelope.issuedAt);
  const step = `step envelope ${envelope.stepId} (attempt ${envelope.attempt})`;
  const fix = `not run; fix time sync on this node (the agent allows ${VERIFY_SKEW_SECONDS} s of clock skew)`;
  const message =
    offset < 0
      ? `this node's clock is at least ${seconds(-offset)} behind the service's: ${step} was issued at ${envelope.issuedAt}, and this node's clock read ${now.toISOString()}; ${fix}`
      : `${step} expired at ${envelope.expiresAt} (issued at ${envelope.issuedAt}), and this node's clock read ${now.toISOString()}, ${seconds(offset)} after it was issued: ` +
        `if the service still waits for this step, this node's clock is at least ${seconds(now.getTime() - Date.parse(envelope.expiresAt))} ahead of the service's; ${fix}`;
  return { code: "clock_skew", message, retryable: true };
}

/** A verified envelope refused by this node's clock only: answered with a remembered signed failure, never run. */
async function answerClockSkew(
  ctx: EnvelopeContext,
  connection: Connection,
  message: ServiceBusReceivedMessage,
  envelope: StepEnvelope,
  now: Date,
): Promise<void> {
  const ref: StepRef = { sagaId: envelope.sagaId, stepId: envelope.stepId, attempt: envelope.attempt };
  if (await answeredBefore(ctx, connection, message, ref, now)) return;
  const error = clockSkewError(envelope, now);
  const result = signResult(ctx, ref, now, { outcome: "failed", error }, await ctx.manifestDigest(), envelope.traceparent);
  // Remembered before it is sent, as every result is: a redelivery gets this very result, not a second opinion.
  const keepUntil = keepUntilOf(envelope);
  await ctx.store.update((s) => withResult(s, { ...ref, keepUntil, result }, ctx.now()));
  await sendResult(connection, result);
  await settle(ctx, () => connection.receiver.completeMessage(message), ref);
  ctx.onEvent({ type: "envelope-refused", code: error.code, message: error.message, disposition: "failed-result", step: ref });
}

/** Not answered: dead-lettered with the reason (the broker keeps it for inspection), and logged. Nothing is signed. */
async function deadLetter(
  ctx: EnvelopeContext,
  connection: Connection,
  message: ServiceBusReceivedMessage,
  error: { code: string; message: string },
  step?: StepRef,
): Promise<void> {
  await settle(
    ctx,
    () => connection.receiver.deadLetterMessage(message, { deadLetterReason: error.code, deadLetterErrorDescription: error.message.slice(0, 1024) }),
    step,
  );
  ctx.onEvent({ type: "envelope-refused", code: error.code, message: error.message, disposition: "dead-lettered", ...(step ? { step } : {}) });
}

/** A verified envelope the agent will not run changes nothing on disk: a signed failed result when it names its step. */
async function refuse(ctx: EnvelopeContext, connection: Connection, message: ServiceBusReceivedMessage, error: ContractError): Promise<void> {
  const ref = identify(message.body);
  if (!ref) return deadLetter(ctx, connection, message, error);
  const at = ctx.now();
  const stepError: StepError = { code: error.code, message: error.message.slice(0, 4096) || error.code, retryable: error.code === "envelope_not_yet_valid" };
  const result = signResult(ctx, ref, at, { outcome: "failed", error: stepError }, await ctx.manifestDigest(), traceparentOf(message.body));
  await sendResult(connection, result);
  await settle(ctx, () => connection.receiver.completeMessage(message), ref);
  ctx.onEvent({ type: "envelope-refused", code: error.code, message: error.message, disposition: "failed-result", step: ref });
}

/** The trace context a verified but refused envelope carries, when it is well formed. */
function traceparentOf(body: unknown): string | undefined {
  const parsed = TraceparentSchema.safeParse((body as Record<string, unknown>)["traceparent"]);
  return parsed.success ? parsed.data : undefined;
}

/** The step a verified but refused envelope names, when it names one well enough to answer it. */
function identify(body: unknown): StepRef | undefined {
  if (typeof body !== "object" || body === null) return undefined;
  const b = body as Record<string, unknown>;
  const sagaId = IdentifierSchema.safeParse(b["sagaId"]);
  const stepId = IdentifierSchema.safeParse(b["stepId"]);
  const attempt = AttemptSchema.safeParse(b["attempt"]);
  if (!sagaId.success || !stepId.success || !attempt.success) return undefined;
  return { sagaId: sagaId.data, stepId: stepId.data, attempt: attempt.data };
}
