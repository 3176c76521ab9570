/**
 * The service loop (`flexnode-agent run`): receive the node's signed step envelopes from its own Service Bus queue,
 * run each once, and answer with a result signed by the node key.
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
 * will not run (a newer version, an unknown kind, bad params, or not yet valid by this node's clock).
 *
 * Idle cost: there is no polling loop. `subscribe()` leaves link credit with the broker, which pushes the next message
 * when there is one; between messages the agent's only timers are the credential refresh (hours) and the SDK's own
 * (CBS token re-put every 45 minutes per link, AMQP heartbeats).
 *
 * Drain mode (`drain` set): no agent stays resident once the node is Ready. After `idleMs` without a message, the
 * loop asks the service for the node's status; Ready, and the timer that starts the agent again active, it ends
 * like a stop (the CLI exits 0). Anything else (onboarding, offboarding, the timer not running) keeps it here and
 * it asks again after `recheckMs`. A message pushed meanwhile is handled first: the question waits for quiet.
 */
import type { KeyObject } from "node:crypto";
import { AzureSASCredential } from "@azure/core-auth";
import {
  ServiceBusClient,
  type ProcessErrorArgs,
  type ServiceBusClientOptions,
  type ServiceBusReceivedMessage,
  type ServiceBusReceiver,
  type ServiceBusSender,
} from "@azure/service-bus";
import { ContractError, SecretInMessageError } from "../../contract/errors.js";
import { AttemptSchema, IdentifierSchema } from "../../contract/fields.js";
import { importPublicKey } from "../../contract/keys.js";
import type { MailboxCredentials } from "../../contract/mailbox-credentials.js";
import { ownsMailbox } from "../../contract/node-status.js";
import { verifyStepEnvelope, type StepEnvelope, type StepParamsSchemas } from "../../contract/step-envelope.js";
import { buildStepResult, type StepError, type StepResult } from "../../contract/step-result.js";
import type { AgentEvent, StepRef } from "./agent-events.js";
import { rememberedResult, wasAnswered, withResult, type AgentState, type AgentStateStore } from "./agent-state.js";
import { AbortedError, backoffDelay, sleep as realSleep, type Sleep } from "./backoff.js";
import { whyUnanswerable } from "./envelope-trust.js";
import type { NodeIdentity } from "./identity.js";
import type { NodeStatusView } from "./node-api-client.js";
import type { ArchiveLimits, HostCommands, RunStep, SecretSource, StepRunResult } from "./ports.js";
import { RetriesExhaustedError, ServiceRefusedError } from "./service-errors.js";

/** Envelope clock skew the agent tolerates (the contract's maximum); a remembered result is kept that much longer. */
const ENVELOPE_SKEW_SECONDS = 300;
/** Skew envelopes are verified with. */
const VERIFY_SKEW_SECONDS = 60;
const LOCK_MARGIN_MS = 5 * 60_000;
const SETTLE_TIMEOUT_MS = 90_000;

export interface MailboxApi extends SecretSource {
  mailboxCredentials(): Promise<MailboxCredentials>;
  status(): Promise<NodeStatusView>;
}

export interface MailboxLoopOptions {
  store: AgentStateStore;
  identity: NodeIdentity;
  api: MailboxApi;
  runStep: RunStep;
  /** sha256:<hex> of the applied-state manifest as it is now (read only), for results of steps that never ran. */
  manifestDigest(): Promise<string>;
  root: string;
  host: HostCommands;
  ca?: string;
  paramsSchemas?: StepParamsSchemas;
  /** Longest step: the message lock is renewed that long (plus a margin). */
  maxStepMs: number;
  archiveLimits?: ArchiveLimits;
  signal: AbortSignal;
  now(): Date;
  onEvent(event: AgentEvent): void;
  sleep?: Sleep;
  /** Service Bus client options (tests shorten retries). */
  serviceBus?: ServiceBusClientOptions;
  /** How long stopping waits for a running step before closing anyway (its lock then lapses and it is redelivered). */
  stopGraceMs?: number;
  /** Lock time kept beyond `maxStepMs` for signing, recording and sending the result (default 5 minutes). */
  lockMarginMs?: number;
  /** Longest wait for the broker to confirm a settlement before moving on (default 90 s). */
  settleTimeoutMs?: number;
  /** Drain mode: end once the node is Ready and the queue is quiet (see the header). */
  drain?: DrainOptions;
}

export interface DrainOptions {
  /** Quiet time on the queue before asking whether to end. */
  idleMs: number;
  /** Wait before asking again (node not Ready yet, timer not active, service unreachable). */
  recheckMs: number;
  /** The unit that starts the agent again; the loop ends only while it is active. */
  timerUnit: string;
}

/** The node has no mailbox in its current state (failed, offboarded): nothing to listen to. */
export class NoMailboxError extends Error {
  readonly code = "no_mailbox";
  constructor(readonly status: string) {
    super(`the service has no mailbox for this node while it is ${status}; nothing to run (re-enrol to onboard it again)`);
    this.name = "NoMailboxError";
  }
}

/** Runs until `signal` aborts; resolves after the receiver, sender and connections are closed. */
export async function runMailboxLoop(o: MailboxLoopOptions): Promise<void> {
  const loop = new MailboxLoop(o);
  await loop.run();
}

interface Connection {
  credentials: MailboxCredentials;
  listen: AzureSASCredential;
  send: AzureSASCredential;
  listenClient: ServiceBusClient;
  sendClient: ServiceBusClient;
  receiver: ServiceBusReceiver;
  sender: ServiceBusSender;
  close(): Promise<void>;
}

class MailboxLoop {
  private readonly sleep: Sleep;
  private refreshTimer: NodeJS.Timeout | undefined;
  private refreshing: Promise<void> | undefined;
  private inFlight: Promise<void> | undefined;
  private connection: Connection | undefined;
  private servicePublicKey: KeyObject | undefined;
  private nodeId = "";
  /** Set when the service says this node has no mailbox any more (failed, offboarded): the loop ends with it. */
  private gone: NoMailboxError | undefined;
  private markGone: (() => void) | undefined;
  private lastGoneCheck = 0;
  private goneChecks = 0;
  private drainTimer: NodeJS.Timeout | undefined;
  private drained: { status: string; timer: string } | undefined;
  private timerWarned = false;

  constructor(private readonly o: MailboxLoopOptions) {
    this.sleep = o.sleep ?? realSleep;
  }

  async run(): Promise<void> {
    const state = await this.o.store.require();
    this.nodeId = state.nodeId;
    this.servicePublicKey = importPublicKey(state.service.publicKey);
    let credentials: MailboxCredentials;
    try {
      credentials = await this.obtainCredentials(state);
    } catch (error) {
      if (error instanceof AbortedError) return this.o.onEvent({ type: "stopped" });
      throw error;
    }
    const connection = this.connect(credentials);
    this.connection = connection;
    await this.recordMailbox(credentials);
    const subscription = connection.receiver.subscribe(
      {
        processMessage: (message) => this.track(this.handle(connection, message)),
        processError: async (args) => this.onError(args),
      },
      { autoCompleteMessages: false, maxConcurrentCalls: 1 },
    );
    this.o.onEvent({ type: "mailbox-connected", namespace: credentials.namespace, queue: credentials.queue, credentialsExpireAt: credentials.expiresAt });
    this.scheduleRefresh(credentials);
    this.armDrain(this.o.drain?.idleMs);
    await new Promise<void>((resolve) => {
      this.markGone = resolve;
      if (this.o.signal.aborted) resolve();
      else this.o.signal.addEventListener("abort", () => resolve(), { once: true });
    });
    clearTimeout(this.refreshTimer);
    clearTimeout(this.drainTimer);
    await subscription.close();
    if (this.inFlight) {
      const grace = this.o.stopGraceMs ?? 30_000;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.inFlight, new Promise<void>((r) => (timer = setTimeout(r, grace)))]);
      clearTimeout(timer);
    }
    await connection.close();
    if (this.gone) throw this.gone;
    if (this.drained && !this.o.signal.aborted) this.o.onEvent({ type: "drained", ...this.drained });
    else this.o.onEvent({ type: "stopped" });
  }

  // ------------------------------------------------------------------ drain mode

  private armDrain(delayMs: number | undefined): void {
    clearTimeout(this.drainTimer);
    if (delayMs === undefined || this.o.signal.aborted || this.gone || this.drained) return;
    this.drainTimer = setTimeout(() => void this.tryDrain(), delayMs);
  }

  private async tryDrain(): Promise<void> {
    const drain = this.o.drain;
    // A message being handled re-arms the question when it is done.
    if (!drain || this.inFlight || this.o.signal.aborted || this.gone) return;
    let status: string;
    try {
      status = (await this.o.api.status()).status;
    } catch (error) {
      this.o.onEvent({ type: "error", where: "drain", message: `cannot ask the service for this node's status: ${messageOf(error)}` });
      return this.armDrain(drain.recheckMs);
    }
    if (this.inFlight) return;
    await this.o.store.update((s) => (s.status === status ? s : { ...s, status }));
    if (status !== "Ready") return this.armDrain(drain.recheckMs);
    const timer = await this.o.host.run("systemctl", ["is-active", drain.timerUnit]);
    if (timer.code !== 0) {
      if (!this.timerWarned)
        this.o.onEvent({
          type: "error",
          where: "drain",
          message: `drain mode, but ${drain.timerUnit} is ${timer.stdout.trim() || "not active"}: staying connected (systemctl enable --now ${drain.timerUnit})`,
        });
      this.timerWarned = true;
      return this.armDrain(drain.recheckMs);
    }
    if (this.inFlight) return;
    this.drained = { status, timer: drain.timerUnit };
    this.markGone?.();
  }

  /**
   * Mailbox credentials; while the node waits for an admin's approval, polls its status first. A service that cannot
   * be reached is waited out (an agent must survive a service outage at boot); a refusal other than "no mailbox yet"
   * ends the loop.
   */
  private async obtainCredentials(state: AgentState): Promise<MailboxCredentials> {
    for (let outage = 1; ;) {
      this.o.signal.throwIfAborted();
      try {
        try {
          return await this.o.api.mailboxCredentials();
        } catch (error) {
          if (!(error instanceof ServiceRefusedError) || error.status !== 409) throw error;
        }
        const { status } = await this.o.api.status();
        if (status !== "AwaitingApproval" && !ownsMailbox(status)) throw new NoMailboxError(status);
        // Approved (or about to be): the mailbox follows within a poll interval.
        if (status === "AwaitingApproval") this.o.onEvent({ type: "waiting-for-approval", status, nextCheckInSeconds: state.poll.intervalSeconds });
        await this.sleep(state.poll.intervalSeconds * 1000, this.o.signal);
        outage = 1;
      } catch (error) {
        if (!(error instanceof RetriesExhaustedError)) throw error;
        this.o.onEvent({ type: "error", where: "node-api", message: `${error.message}; trying again` });
        await this.sleep(Math.max(1_000, backoffDelay(outage++, { baseMs: 10_000, maxMs: 5 * 60_000 })), this.o.signal);
      }
    }
  }

  private connect(credentials: MailboxCredentials): Connection {
    // One connection per credential: a SAS credential carries a single token, and the Listen token is scoped to this
    // node's queue while the Send token is scoped to the results queue.
    const listen = new AzureSASCredential(credentials.listenSas);
    const send = new AzureSASCredential(credentials.sendSas);
    const listenClient = new ServiceBusClient(credentials.namespace, listen, this.o.serviceBus);
    const sendClient = new ServiceBusClient(credentials.namespace, send, this.o.serviceBus);
    const receiver = listenClient.createReceiver(credentials.queue, {
      receiveMode: "peekLock",
      maxAutoLockRenewalDurationInMs: this.o.maxStepMs + (this.o.lockMarginMs ?? LOCK_MARGIN_MS),
    });
    const sender = sendClient.createSender(credentials.resultsQueue);
    return {
      credentials,
      listen,
      send,
      listenClient,
      sendClient,
      receiver,
      sender,
      close: async () => {
        const steps = [() => receiver.close(), () => sender.close(), () => listenClient.close(), () => sendClient.close()];
        for (const step of steps) {
          try {
            await step();
          } catch (error) {
            this.o.onEvent({ type: "error", where: "close", message: (error as Error).message });
          }
        }
      },
    };
  }

  private track(work: Promise<void>): Promise<void> {
    clearTimeout(this.drainTimer);
    this.inFlight = work.finally(() => {
      if (this.inFlight === tracked) this.inFlight = undefined;
      this.armDrain(this.o.drain?.idleMs);
    });
    const tracked = this.inFlight;
    return work;
  }

  private onError(args: ProcessErrorArgs): void {
    // While stopping, the SDK reports its own shutdown ("receiver is suspended"); that is not news.
    if (this.o.signal.aborted || this.gone) return;
    const code = (args.error as { code?: string }).code;
    // The queue is gone: the SDK re-attaches many times a second. Ask the service whether this node still has a
    // mailbox (a queue re-created for a new onboarding) or not (failed, offboarded: stop): first at once, then after
    // 2, 4, 8, 16 and every 30 s. An offboarding deletes the queue a moment before it marks the node Offboarded, so
    // the first answer is often still "Offboarding" (a flat 30 s kept an offboarded agent running that long).
    if (code === "MessagingEntityNotFound") {
      const interval = this.goneChecks === 0 ? 0 : Math.min(30_000, 1_000 * 2 ** this.goneChecks);
      if (this.o.now().getTime() - this.lastGoneCheck < interval) return;
      this.lastGoneCheck = this.o.now().getTime();
      this.goneChecks += 1;
      void this.checkStillHasMailbox();
    }
    this.o.onEvent({ type: "error", where: `servicebus:${args.errorSource}`, message: `${code ? `${code}: ` : ""}${args.error.message}` });
    // An expired token detaches the link; the SDK re-attaches with the credential's current token, so make it fresh.
    if (code === "UnauthorizedAccess" && this.connection) void this.refreshNow(this.connection);
  }

  // ------------------------------------------------------------------ one message

  private async checkStillHasMailbox(): Promise<void> {
    try {
      const { status } = await this.o.api.status();
      if (status === "AwaitingApproval" || ownsMailbox(status)) return;
      this.gone = new NoMailboxError(status);
      this.markGone?.();
    } catch (error) {
      this.o.onEvent({ type: "error", where: "node-api", message: messageOf(error) });
    }
  }

  private async handle(connection: Connection, message: ServiceBusReceivedMessage): Promise<void> {
    const now = this.o.now();
    let envelope: StepEnvelope;
    try {
      envelope = verifyStepEnvelope(message.body, {
        servicePublicKey: this.servicePublicKey!,
        nodeId: this.nodeId,
        now,
        maxSkewSeconds: VERIFY_SKEW_SECONDS,
        ...(this.o.paramsSchemas ? { paramsSchemas: this.o.paramsSchemas } : {}),
      });
    } catch (error) {
      if (!(error instanceof ContractError)) throw error;
      const unanswerable = whyUnanswerable(message.body, error, {
        servicePublicKey: this.servicePublicKey!,
        nodeId: this.nodeId,
        now,
        skewSeconds: VERIFY_SKEW_SECONDS,
      });
      return unanswerable ? this.deadLetter(connection, message, unanswerable) : this.refuse(connection, message, error);
    }
    const ref: StepRef = { sagaId: envelope.sagaId, stepId: envelope.stepId, attempt: envelope.attempt };

    const state = await this.o.store.require();
    const seen = rememberedResult(state, ref, now);
    if (seen) {
      await this.sendResult(connection, seen.result);
      await this.settle(() => connection.receiver.completeMessage(message), ref);
      this.o.onEvent({ type: "result-resent", ...ref, outcome: seen.result.outcome });
      return;
    }
    if (wasAnswered(state, ref, now)) {
      const why = {
        code: "already_answered",
        message: `step ${ref.stepId} (attempt ${ref.attempt}) of ${ref.sagaId} was answered before a reset; it is not run again`,
      };
      return this.deadLetter(connection, message, why, ref);
    }

    const startedAt = this.o.now();
    await this.o.store.update((s) => ({ ...s, current: { ...ref, kind: envelope.kind, startedAt: startedAt.toISOString() } }));
    this.o.onEvent({ type: "step-started", ...ref, kind: envelope.kind });
    let run: StepRunResult;
    try {
      run = await this.o.runStep(envelope, {
        root: this.o.root,
        host: this.o.host,
        secrets: this.o.api,
        ...(this.o.ca !== undefined ? { ca: this.o.ca } : {}),
        ...(this.o.archiveLimits ? { archiveLimits: this.o.archiveLimits } : {}),
        now: this.o.now,
        log: (line) => this.o.onEvent({ type: "step-log", ...ref, line }),
      });
    } catch (error) {
      // RunStep reports step failures as results; a throw is the agent's own bug or an unexpected host error.
      run = { outcome: "failed", error: { code: "agent_error", message: messageOf(error), retryable: true }, manifestDigest: await this.o.manifestDigest() };
    }
    const result = this.sign(
      ref,
      startedAt,
      run.outcome === "succeeded" ? { outcome: "succeeded", output: run.output } : { outcome: "failed", error: run.error },
      run.manifestDigest,
    );
    const keepUntil = new Date(Date.parse(envelope.expiresAt) + ENVELOPE_SKEW_SECONDS * 1000).toISOString();
    await this.o.store.update((s) => {
      // After a successful reset nothing earlier is applied any more; its remembered results are history (the attempts
      // stay in `answered`, so a replay of one is still refused).
      const base = envelope.kind === "reset" && result.outcome === "succeeded" ? { ...s, results: [] } : s;
      const { current: _current, ...rest } = base;
      return withResult(rest, { ...ref, keepUntil, result }, this.o.now());
    });
    await this.sendResult(connection, result);
    await this.settle(() => connection.receiver.completeMessage(message), ref);
    this.o.onEvent({
      type: "step-finished",
      ...ref,
      kind: envelope.kind,
      outcome: result.outcome,
      ...(result.outcome === "failed" ? { errorCode: result.error.code } : {}),
    });
  }

  /** Not answered: dead-lettered with the reason (the broker keeps it for inspection), and logged. Nothing is signed. */
  private async deadLetter(
    connection: Connection,
    message: ServiceBusReceivedMessage,
    error: { code: string; message: string },
    step?: StepRef,
  ): Promise<void> {
    await this.settle(
      () => connection.receiver.deadLetterMessage(message, { deadLetterReason: error.code, deadLetterErrorDescription: error.message.slice(0, 1024) }),
      step,
    );
    this.o.onEvent({ type: "envelope-refused", code: error.code, message: error.message, disposition: "dead-lettered", ...(step ? { step } : {}) });
  }

  /** A verified envelope the agent will not run changes nothing on disk: a signed failed result when it names its step. */
  private async refuse(connection: Connection, message: ServiceBusReceivedMessage, error: ContractError): Promise<void> {
    const ref = identify(message.body);
    if (!ref) return this.deadLetter(connection, message, error);
    const at = this.o.now();
    const stepError: StepError = { code: error.code, message: error.message.slice(0, 4096) || error.code, retryable: error.code === "envelope_not_yet_valid" };
    const result = this.sign(ref, at, { outcome: "failed", error: stepError }, await this.o.manifestDigest());
    await this.sendResult(connection, result);
    await this.settle(() => connection.receiver.completeMessage(message), ref);
    this.o.onEvent({ type: "envelope-refused", code: error.code, message: error.message, disposition: "failed-result", step: ref });
  }

  private sign(
    ref: StepRef,
    startedAt: Date,
    outcome: { outcome: "succeeded"; output: StepResult["output"] } | { outcome: "failed"; error: StepError },
    manifestDigest: string,
  ): StepResult {
    const common = { nodeId: this.nodeId, ...ref, startedAt, finishedAt: laterOf(startedAt, this.o.now()), manifestDigest };
    const privateKey = this.o.identity.privateKey;
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

  /**
   * Settles without ever blocking the loop for long: a settlement that fails or goes unanswered (the lock was lost, the
   * link it arrived on was re-attached meanwhile) leaves the message to come back when its lock lapses, and the
   * remembered result answers it then. Throwing instead would make the SDK abandon it, which can hang the same way.
   */
  private async settle(operation: () => Promise<void>, ref?: StepRef): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeoutMs = this.o.settleTimeoutMs ?? SETTLE_TIMEOUT_MS;
    const pending = operation();
    try {
      await Promise.race([
        pending,
        new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no settlement confirmation within ${timeoutMs} ms`)), timeoutMs))),
      ]);
    } catch (error) {
      pending.catch(() => undefined);
      const which = ref ? ` of ${ref.stepId} (attempt ${ref.attempt})` : "";
      this.o.onEvent({
        type: "error",
        where: "settle",
        message: `the message${which} was not settled (${messageOf(error) || (error as { code?: string }).code || "unknown error"}); it will be redelivered and answered with the same result`,
      });
    } finally {
      clearTimeout(timer);
    }
  }

  private async sendResult(connection: Connection, result: StepResult): Promise<void> {
    await connection.sender.sendMessages({
      body: result,
      contentType: "application/json",
      messageId: `${result.nodeId}/${result.stepId}/${result.attempt}`.slice(0, 128),
    });
  }

  // ------------------------------------------------------------------ credentials

  private scheduleRefresh(credentials: MailboxCredentials, delayOverrideMs?: number): void {
    clearTimeout(this.refreshTimer);
    const delay = delayOverrideMs ?? Date.parse(credentials.refreshAfter) - this.o.now().getTime();
    this.refreshTimer = setTimeout(() => void this.refreshNow(this.connection!), Math.min(2 ** 31 - 1, Math.max(1_000, delay)));
  }

  private refreshNow(connection: Connection): Promise<void> {
    this.refreshing ??= this.refresh(connection, 1).finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  private async refresh(connection: Connection, failures: number): Promise<void> {
    if (this.o.signal.aborted) return;
    try {
      const fresh = await this.o.api.mailboxCredentials();
      if (fresh.queue !== connection.credentials.queue || fresh.namespace !== connection.credentials.namespace) {
        this.o.onEvent({
          type: "error",
          where: "credentials",
          message: `the service moved the mailbox to ${fresh.namespace}/${fresh.queue}; restart the agent to follow it`,
        });
      }
      // update(), not a new credential or receiver: the SDK reads the credential's current token on every re-put and
      // re-attach, so the open links carry on.
      connection.listen.update(fresh.listenSas);
      connection.send.update(fresh.sendSas);
      connection.credentials = { ...connection.credentials, expiresAt: fresh.expiresAt, refreshAfter: fresh.refreshAfter };
      await this.recordMailbox(fresh);
      this.o.onEvent({ type: "credentials-refreshed", expiresAt: fresh.expiresAt, refreshAfter: fresh.refreshAfter });
      this.scheduleRefresh(fresh);
    } catch (error) {
      if (this.o.signal.aborted) return;
      this.o.onEvent({ type: "error", where: "credentials", message: messageOf(error) });
      // Try again well before the tokens lapse: backoff, but never past a quarter of the time left.
      const left = Date.parse(connection.credentials.expiresAt) - this.o.now().getTime();
      const delay = Math.max(1_000, Math.min(backoffDelay(failures, { baseMs: 5_000, maxMs: 5 * 60_000 }) + 1_000, left / 4));
      clearTimeout(this.refreshTimer);
      this.refreshTimer = setTimeout(() => void this.refresh(connection, failures + 1), delay);
    }
  }

  private async recordMailbox(c: MailboxCredentials): Promise<void> {
    await this.o.store.update((s) => ({
      ...s,
      status: s.status === "AwaitingApproval" ? "Enrolling" : s.status,
      mailbox: { namespace: c.namespace, queue: c.queue, resultsQueue: c.resultsQueue, expiresAt: c.expiresAt, refreshAfter: c.refreshAfter },
    }));
  }
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

function laterOf(a: Date, b: Date): Date {
  return b.getTime() >= a.getTime() ? b : a;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
