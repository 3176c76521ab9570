/**
 * The service loop (`flexnode-agent run`): receive the node's signed step envelopes from its own Service Bus queue,
 * run each once, and answer with a result signed by the node key.
 *
 * Its parts: the first credentials and their renewal (credential-refresh.ts), the two connections and settlement
 * (mailbox-connection.ts), one message start to settlement (envelope-handling.ts, which says what is answered and
 * what is not), noticing the mailbox is gone (no-mailbox.ts), and ending once the node is Ready (drain-mode.ts).
 *
 * Idle cost: there is no polling loop. `subscribe()` leaves link credit with the broker, which pushes the next message
 * when there is one; between messages the agent's only timers are the credential refresh (hours) and the SDK's own
 * (CBS token re-put every 45 minutes per link, AMQP heartbeats).
 */
import type { ProcessErrorArgs } from "@azure/service-bus";
import { importPublicKey } from "../../contract/keys.js";
import type { MailboxCredentials } from "../../contract/mailbox-credentials.js";
import { AbortedError, sleep as realSleep } from "./backoff.js";
import { CredentialRefresh, obtainCredentials, recordMailbox } from "./credential-refresh.js";
import { DrainMode } from "./drain-mode.js";
import { handleEnvelope, type EnvelopeContext } from "./envelope-handling.js";
import { connect } from "./mailbox-connection.js";
import type { MailboxLoopOptions } from "./mailbox-loop-options.js";
import { QueueGoneCheck } from "./no-mailbox.js";

export type { DrainOptions, MailboxApi, MailboxLoopOptions } from "./mailbox-loop-options.js";
export { NoMailboxError } from "./no-mailbox.js";

/** Runs until `signal` aborts; resolves after the receiver, sender and connections are closed. */
export async function runMailboxLoop(o: MailboxLoopOptions): Promise<void> {
  const loop = new MailboxLoop(o);
  await loop.run();
}

class MailboxLoop {
  private inFlight: Promise<void> | undefined;
  private markGone: (() => void) | undefined;
  private readonly goneCheck: QueueGoneCheck;
  private readonly drain: DrainMode | undefined;

  constructor(private readonly o: MailboxLoopOptions) {
    this.goneCheck = new QueueGoneCheck(o, () => this.markGone?.());
    this.drain = o.drain
      ? new DrainMode(o.drain, o, { busy: () => this.inFlight !== undefined, ending: () => this.goneCheck.gone !== undefined, end: () => this.markGone?.() })
      : undefined;
  }

  async run(): Promise<void> {
    const state = await this.o.store.require();
    const envelopes: EnvelopeContext = { ...this.o, nodeId: state.nodeId, servicePublicKey: importPublicKey(state.service.publicKey) };
    let credentials: MailboxCredentials;
    try {
      credentials = await obtainCredentials(this.o, this.o.sleep ?? realSleep, state);
    } catch (error) {
      if (error instanceof AbortedError) return this.o.onEvent({ type: "stopped" });
      throw error;
    }
    const connection = connect(credentials, this.o);
    const refresh = new CredentialRefresh(this.o, connection);
    await recordMailbox(this.o.store, credentials);
    const subscription = connection.receiver.subscribe(
      {
        processMessage: (message) => this.track(handleEnvelope(envelopes, connection, message)),
        processError: async (args) => this.onError(args, refresh),
      },
      { autoCompleteMessages: false, maxConcurrentCalls: 1 },
    );
    this.o.onEvent({ type: "mailbox-connected", namespace: credentials.namespace, queue: credentials.queue, credentialsExpireAt: credentials.expiresAt });
    refresh.schedule(credentials);
    this.drain?.armIdle();
    await new Promise<void>((resolve) => {
      this.markGone = resolve;
      if (this.o.signal.aborted) resolve();
      else this.o.signal.addEventListener("abort", () => resolve(), { once: true });
    });
    refresh.stop();
    this.drain?.pause();
    await subscription.close();
    if (this.inFlight) {
      const grace = this.o.stopGraceMs ?? 30_000;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.inFlight, new Promise<void>((r) => (timer = setTimeout(r, grace)))]);
      clearTimeout(timer);
    }
    await connection.close();
    if (this.goneCheck.gone) throw this.goneCheck.gone;
    if (this.drain?.drained && !this.o.signal.aborted) this.o.onEvent({ type: "drained", ...this.drain.drained });
    else this.o.onEvent({ type: "stopped" });
  }

  private track(work: Promise<void>): Promise<void> {
    this.drain?.pause();
    this.inFlight = work.finally(() => {
      if (this.inFlight === tracked) this.inFlight = undefined;
      this.drain?.armIdle();
    });
    const tracked = this.inFlight;
    return work;
  }

  private onError(args: ProcessErrorArgs, refresh: CredentialRefresh): void {
    // While stopping, the SDK reports its own shutdown ("receiver is suspended"); that is not news.
    if (this.o.signal.aborted || this.goneCheck.gone) return;
    const code = (args.error as { code?: string }).code;
    if (code === "MessagingEntityNotFound") this.goneCheck.queueMissing();
    this.o.onEvent({ type: "error", where: `servicebus:${args.errorSource}`, message: `${code ? `${code}: ` : ""}${args.error.message}` });
    // An expired token detaches the link; the SDK re-attaches with the credential's current token, so make it fresh.
    if (code === "UnauthorizedAccess") void refresh.now();
  }
}
