/**
 * The mailbox's SAS credentials: the first ones (waiting out an admin's approval and service outages) and their
 * renewal on the open connection before they lapse.
 */
import type { MailboxCredentials } from "../../contract/mailbox-credentials.js";
import type { AgentState, AgentStateStore } from "./agent-state.js";
import { backoffDelay, type Sleep } from "./backoff.js";
import type { Connection } from "./mailbox-connection.js";
import type { MailboxLoopOptions } from "./mailbox-loop-options.js";
import { messageOf } from "./message-of.js";
import { hasOrAwaitsMailbox, NoMailboxError } from "./no-mailbox.js";
import { RetriesExhaustedError, ServiceRefusedError } from "./service-errors.js";

/**
 * Mailbox credentials; while the node waits for an admin's approval, polls its status first. A service that cannot
 * be reached is waited out (an agent must survive a service outage at boot); a refusal other than "no mailbox yet"
 * ends the loop.
 */
export async function obtainCredentials(
  o: Pick<MailboxLoopOptions, "api" | "signal" | "onEvent">,
  sleep: Sleep,
  state: AgentState,
): Promise<MailboxCredentials> {
  for (let outage = 1; ;) {
    o.signal.throwIfAborted();
    try {
      try {
        return await o.api.mailboxCredentials();
      } catch (error) {
        if (!(error instanceof ServiceRefusedError) || error.status !== 409) throw error;
      }
      const { status } = await o.api.status();
      if (!hasOrAwaitsMailbox(status)) throw new NoMailboxError(status);
      // Approved (or about to be): the mailbox follows within a poll interval.
      if (status === "AwaitingApproval") o.onEvent({ type: "waiting-for-approval", status, nextCheckInSeconds: state.poll.intervalSeconds });
      await sleep(state.poll.intervalSeconds * 1000, o.signal);
      outage = 1;
    } catch (error) {
      if (!(error instanceof RetriesExhaustedError)) throw error;
      o.onEvent({ type: "error", where: "node-api", message: `${error.message}; trying again` });
      await sleep(Math.max(1_000, backoffDelay(outage++, { baseMs: 10_000, maxMs: 5 * 60_000 })), o.signal);
    }
  }
}

/** Keeps one connection's credentials fresh: on schedule (`refreshAfter`), and at once when the broker refuses a token. */
export class CredentialRefresh {
  private timer: NodeJS.Timeout | undefined;
  private refreshing: Promise<void> | undefined;

  constructor(
    private readonly o: Pick<MailboxLoopOptions, "api" | "store" | "signal" | "now" | "onEvent">,
    private readonly connection: Connection,
  ) {}

  schedule(credentials: MailboxCredentials): void {
    clearTimeout(this.timer);
    const delay = Date.parse(credentials.refreshAfter) - this.o.now().getTime();
    this.timer = setTimeout(() => void this.now(), Math.min(2 ** 31 - 1, Math.max(1_000, delay)));
  }

  now(): Promise<void> {
    this.refreshing ??= this.refresh(1).finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  stop(): void {
    clearTimeout(this.timer);
  }

  private async refresh(failures: number): Promise<void> {
    const connection = this.connection;
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
      await recordMailbox(this.o.store, fresh);
      this.o.onEvent({ type: "credentials-refreshed", expiresAt: fresh.expiresAt, refreshAfter: fresh.refreshAfter });
      this.schedule(fresh);
    } catch (error) {
      if (this.o.signal.aborted) return;
      this.o.onEvent({ type: "error", where: "credentials", message: messageOf(error) });
      // Try again well before the tokens lapse: backoff, but never past a quarter of the time left.
      const left = Date.parse(connection.credentials.expiresAt) - this.o.now().getTime();
      const delay = Math.max(1_000, Math.min(backoffDelay(failures, { baseMs: 5_000, maxMs: 5 * 60_000 }) + 1_000, left / 4));
      clearTimeout(this.timer);
      this.timer = setTimeout(() => void this.refresh(failures + 1), delay);
    }
  }
}

/** The mailbox as the service last handed it out, kept in state.json for `status`. */
export async function recordMailbox(store: AgentStateStore, c: MailboxCredentials): Promise<void> {
  await store.update((s) => ({
    ...s,
    status: s.status === "AwaitingApproval" ? "Enrolling" : s.status,
    mailbox: { namespace: c.namespace, queue: c.queue, resultsQueue: c.resultsQueue, expiresAt: c.expiresAt, refreshAfter: c.refreshAfter },
  }));
}
