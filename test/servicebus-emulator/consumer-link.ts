/**
 * A receiver's link, from the broker's side (an AMQP sender): takes messages from its entity as far as the peer's
 * credit goes, answers drain, and turns the peer's dispositions into settlements. Under peek-lock (rcv-settle-mode
 * second) the SDK waits for us to settle; the settled state must carry no error unless the settlement failed.
 */
import { randomBytes } from "node:crypto";
import type { Delivery, Sender } from "rhea";
import type { LinkRef } from "./delivery-log.js";
import { lockTokenToDeliveryTag } from "./lock-token.js";
import type { Consumer, Disposition, MessageEntity, SettleResult } from "./message-entity.js";
import { creditLimit, outcomes } from "./rhea-link.js";

/** Fields of an outcome as rhea unwraps it from a disposition frame. */
interface RemoteOutcome {
  constructor: { composite_type?: string };
  error?: { condition?: unknown; description?: unknown; info?: unknown };
  undeliverable_here?: boolean;
  message_annotations?: Record<string, unknown>;
}

export class ConsumerLink implements Consumer {
  /** Absolute delivery-count position the peer's credit reaches, and the position our sends have used. */
  private limit = 0;
  private position = 0;
  /** Lock token per delivery id, for peek-lock deliveries not settled yet. */
  private readonly pending = new Map<number, string>();
  private closed = false;

  constructor(
    private readonly sender: Sender,
    private readonly entity: MessageEntity,
    readonly receiveMode: "peekLock" | "receiveAndDelete",
    private readonly currentRef: () => LinkRef,
    private readonly onClosed: () => void,
  ) {}

  get ref(): LinkRef {
    return this.currentRef();
  }

  start(): void {
    this.sender.on("sender_flow", () => {
      this.limit = creditLimit(this.sender);
      this.entity.dispatch();
    });
    this.sender.on("sender_draining", () => {
      // Drain: send what is available now (done on sender_flow, just before), then use up the rest of the credit.
      this.position = Math.max(this.position, this.limit);
      this.sender.set_drained(true);
    });
    for (const event of ["accepted", "rejected", "modified", "released"] as const) {
      this.sender.on(event, (context) => {
        if (context.delivery) this.onOutcome(context.delivery);
      });
    }
    this.sender.on("sender_error", () => undefined);
    this.sender.on("sender_close", () => this.close());
    this.entity.addConsumer(this);
  }

  capacity(): number {
    return this.closed || !this.sender.is_open() ? 0 : this.limit - this.position;
  }

  deliver(encoded: Buffer, lockToken: string | undefined): void {
    const tag = lockToken === undefined ? randomBytes(16) : lockTokenToDeliveryTag(lockToken);
    const delivery = this.sender.send(encoded, tag, 0);
    this.position += 1;
    if (lockToken !== undefined) this.pending.set(delivery.id, lockToken);
  }

  detach(condition: string, description: string): void {
    if (this.closed) return;
    this.sender.close({ condition, description });
    this.close();
  }

  /** The connection is gone; its locks stay until they expire, as on the service. */
  forget(): void {
    this.close();
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    this.entity.removeConsumer(this);
    this.onClosed();
  }

  private onOutcome(delivery: Delivery): void {
    const lockToken = this.pending.get(delivery.id);
    const outcome = delivery.remote_state as RemoteOutcome | undefined;
    // rhea raises `released` as well as `modified` for a modified outcome; the first event settles it.
    if (lockToken === undefined || !outcome) return;
    this.pending.delete(delivery.id);
    const result = this.entity.settle(lockToken, toDisposition(outcome), "link", this.ref);
    delivery.update(true, answer(result, outcome));
  }
}

function toDisposition(outcome: RemoteOutcome): Disposition {
  switch (outcome.constructor.composite_type) {
    case "accepted":
      return { kind: "complete" };
    case "rejected": {
      const info = plainRecord(outcome.error?.info);
      const { DeadLetterReason, DeadLetterErrorDescription, ...rest } = info;
      return {
        kind: "deadLetter",
        reason: optionalString(DeadLetterReason) ?? optionalString(outcome.error?.condition),
        description: optionalString(DeadLetterErrorDescription) ?? optionalString(outcome.error?.description),
        propertiesToModify: rest,
      };
    }
    case "modified":
      return outcome.undeliverable_here
        ? { kind: "defer", propertiesToModify: plainRecord(outcome.message_annotations) }
        : { kind: "abandon", propertiesToModify: plainRecord(outcome.message_annotations) };
    default:
      return { kind: "abandon" };
  }
}

/** The state we settle with: the peer's outcome without an error, or the failure. */
function answer(result: SettleResult, outcome: RemoteOutcome): unknown {
  if (result === "lockLost") {
    return outcomes
      .rejected({
        error: {
          condition: "com.microsoft:message-lock-lost",
          description: "The lock supplied is invalid. Either the lock expired, or the message has already been removed from the queue.",
        },
      })
      .described();
  }
  if (result === "notAllowed") {
    return outcomes
      .rejected({ error: { condition: "amqp:not-allowed", description: "A message in a dead-letter queue cannot be dead-lettered." } })
      .described();
  }
  switch (outcome.constructor.composite_type) {
    case "rejected":
      return outcomes.rejected({}).described();
    case "modified":
      return outcomes.modified({ undeliverable_here: outcome.undeliverable_here ?? false }).described();
    case "released":
      return outcomes.released().described();
    default:
      return outcomes.accepted().described();
  }
}

function plainRecord(value: unknown): Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) ? { ...(value as Record<string, unknown>) } : {};
}

function optionalString(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}
