/**
 * Drain mode (`drain` set): no agent stays resident once the node is Ready. After `idleMs` without a message, the
 * loop asks the service for the node's status; Ready, and the timer that starts the agent again active, it ends
 * like a stop (the CLI exits 0). Anything else (onboarding, offboarding, the timer not running) keeps it here and
 * it asks again after `recheckMs`. A message pushed meanwhile is handled first: the question waits for quiet.
 */
import type { DrainOptions, MailboxLoopOptions } from "./mailbox-loop-options.js";
import { messageOf } from "./message-of.js";

/** What drain mode needs to know of the loop it may end. */
export interface DrainableLoop {
  /** A message is being handled. */
  busy(): boolean;
  /** The loop is ending for another reason (the node has no mailbox any more). */
  ending(): boolean;
  end(): void;
}

export class DrainMode {
  /** Set when the loop ends because it drained. */
  drained: { status: string; timer: string } | undefined;
  private timer: NodeJS.Timeout | undefined;
  private timerWarned = false;

  constructor(
    private readonly drain: DrainOptions,
    private readonly o: Pick<MailboxLoopOptions, "api" | "store" | "host" | "signal" | "onEvent">,
    private readonly loop: DrainableLoop,
  ) {}

  /** Ask once the queue has been quiet for `idleMs` from now. */
  armIdle(): void {
    this.arm(this.drain.idleMs);
  }

  /** No question while a message is handled or the loop stops. */
  pause(): void {
    clearTimeout(this.timer);
  }

  private arm(delayMs: number): void {
    clearTimeout(this.timer);
    if (this.o.signal.aborted || this.loop.ending() || this.drained) return;
    this.timer = setTimeout(() => void this.ask(), delayMs);
  }

  private async ask(): Promise<void> {
    const drain = this.drain;
    // A message being handled re-arms the question when it is done.
    if (this.loop.busy() || this.o.signal.aborted || this.loop.ending()) return;
    let status: string;
    try {
      status = (await this.o.api.status()).status;
    } catch (error) {
      this.o.onEvent({ type: "error", where: "drain", message: `cannot ask the service for this node's status: ${messageOf(error)}` });
      return this.arm(drain.recheckMs);
    }
    if (this.loop.busy()) return;
    await this.o.store.update((s) => (s.status === status ? s : { ...s, status }));
    if (status !== "Ready") return this.arm(drain.recheckMs);
    const timer = await this.o.host.run("systemctl", ["is-active", drain.timerUnit]);
    if (timer.code !== 0) {
      if (!this.timerWarned)
        this.o.onEvent({
          type: "error",
          where: "drain",
          message: `drain mode, but ${drain.timerUnit} is ${timer.stdout.trim() || "not active"}: staying connected (systemctl enable --now ${drain.timerUnit})`,
        });
      this.timerWarned = true;
      return this.arm(drain.recheckMs);
    }
    if (this.loop.busy()) return;
    this.drained = { status, timer: drain.timerUnit };
    this.loop.end();
  }
}
