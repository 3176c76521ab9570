/** Whether the node still has a mailbox to listen to, and noticing when the service has taken it away. */
import { ownsMailbox } from "../../contract/node-status.js";
import type { MailboxLoopOptions } from "./mailbox-loop-options.js";
import { messageOf } from "./message-of.js";

/** The node has no mailbox in its current state (failed, offboarded): nothing to listen to. */
export class NoMailboxError extends Error {
  readonly code = "no_mailbox";
  constructor(readonly status: string) {
    super(`the service has no mailbox for this node while it is ${status}; nothing to run (re-enrol to onboard it again)`);
    this.name = "NoMailboxError";
  }
}

/** A node awaiting approval gets its mailbox once approved, so it is worth waiting for. */
export function hasOrAwaitsMailbox(status: string): boolean {
  return status === "AwaitingApproval" || ownsMailbox(status);
}

/** Asks the service, throttled, whether a queue that went missing means this node has no mailbox any more. */
export class QueueGoneCheck {
  /** Set when the service says this node has no mailbox any more (failed, offboarded): the loop ends with it. */
  gone: NoMailboxError | undefined;
  private lastCheck = 0;
  private checks = 0;

  constructor(
    private readonly o: Pick<MailboxLoopOptions, "api" | "now" | "onEvent">,
    private readonly onGone: () => void,
  ) {}

  queueMissing(): void {
    // The queue is gone: the SDK re-attaches many times a second. Ask the service whether this node still has a
    // mailbox (a queue re-created for a new onboarding) or not (failed, offboarded: stop): first at once, then after
    // 2, 4, 8, 16 and every 30 s. An offboarding deletes the queue a moment before it marks the node Offboarded, so
    // the first answer is often still "Offboarding" (a flat 30 s kept an offboarded agent running that long).
    const interval = this.checks === 0 ? 0 : Math.min(30_000, 1_000 * 2 ** this.checks);
    if (this.o.now().getTime() - this.lastCheck < interval) return;
    this.lastCheck = this.o.now().getTime();
    this.checks += 1;
    void this.check();
  }

  private async check(): Promise<void> {
    try {
      const { status } = await this.o.api.status();
      if (hasOrAwaitsMailbox(status)) return;
      this.gone = new NoMailboxError(status);
      this.onGone();
    } catch (error) {
      this.o.onEvent({ type: "error", where: "node-api", message: messageOf(error) });
    }
  }
}
