/**
 * One message store with Service Bus semantics: a queue or its dead-letter sub-queue. Peek-lock, lock expiry and
 * renewal, settlement, delivery counting, max-delivery-count and TTL dead-lettering, scheduled activation, peek.
 * Locks run on wall time because the SDK schedules lock renewal from `lockedUntilUtc` with real timers; enqueue
 * times, TTL and schedules run on the emulator's Clock.
 */
import rhea, { type Typed } from "rhea";
import { encodeMessage, withApplicationProperties, type BareMessage, type TypedMap } from "./amqp-message.js";
import type { LinkRef, Outcome } from "./delivery-log.js";
import { NEVER_MS } from "./iso-duration.js";
import { newLockToken } from "./lock-token.js";
import type { QueueOwner } from "./queue.js";

const { types } = rhea;

export type MessageState = "active" | "deferred" | "scheduled";

export interface MessageLock {
  token: string;
  /** Wall-clock ms. */
  lockedUntilMs: number;
  holder: Consumer | undefined;
}

export interface StoredMessage {
  sequenceNumber: number;
  messageId: string;
  bare: BareMessage;
  /** Emulator clock ms; for a scheduled message, the time it becomes active. */
  enqueuedAtMs: number;
  /** Emulator clock ms; NEVER_MS when it does not expire. */
  expiresAtMs: number;
  deliveryCount: number;
  state: MessageState;
  lock: MessageLock | undefined;
  /** Set on messages in a dead-letter queue: the queue they came from. */
  deadLetterSource: string | undefined;
}

/** A receiver link as the entity sees it. */
export interface Consumer {
  readonly receiveMode: "peekLock" | "receiveAndDelete";
  readonly ref: LinkRef;
  /** How many more messages the link has credit for right now. */
  capacity(): number;
  deliver(encoded: Buffer, lockToken: string | undefined): void;
  detach(condition: string, description: string): void;
}

export type Disposition =
  | { kind: "complete" }
  | { kind: "abandon"; propertiesToModify?: Record<string, unknown> }
  | { kind: "defer"; propertiesToModify?: Record<string, unknown> }
  | { kind: "deadLetter"; reason?: string; description?: string; propertiesToModify?: Record<string, unknown> };

export type SettleResult = "ok" | "lockLost" | "notAllowed";

const OUTCOMES: Record<Disposition["kind"], Outcome> = {
  complete: "completed",
  abandon: "abandoned",
  defer: "deferred",
  deadLetter: "deadLettered",
};

const MESSAGE_STATE_CODE: Record<MessageState, number> = { active: 0, deferred: 1, scheduled: 2 };

export class MessageEntity {
  /** By sequence number, in arrival order. */
  readonly messages = new Map<number, StoredMessage>();
  private readonly byLock = new Map<string, StoredMessage>();
  private readonly consumers: Consumer[] = [];
  private nextConsumer = 0;

  constructor(
    readonly path: string,
    private readonly owner: QueueOwner,
    /** Where this entity dead-letters to; undefined for a dead-letter queue itself. */
    private readonly deadLetterTarget: MessageEntity | undefined,
  ) {}

  get isDeadLetterQueue(): boolean {
    return this.deadLetterTarget === undefined;
  }

  add(message: StoredMessage): void {
    this.messages.set(message.sequenceNumber, message);
    if (message.state === "active") this.dispatch();
  }

  addConsumer(consumer: Consumer): void {
    this.consumers.push(consumer);
    this.dispatch();
  }

  removeConsumer(consumer: Consumer): void {
    const i = this.consumers.indexOf(consumer);
    if (i >= 0) this.consumers.splice(i, 1);
  }

  detachAll(condition: string, description: string): void {
    for (const consumer of [...this.consumers]) consumer.detach(condition, description);
    this.consumers.length = 0;
  }

  /** Hands available messages to consumers with credit, round-robin. Call after anything that frees a message or adds credit. */
  dispatch(): void {
    if (this.consumers.length === 0) return;
    const now = this.owner.context.clock.now();
    for (const message of [...this.messages.values()]) {
      if (message.state !== "active" || message.lock) continue;
      if (this.expireIfDue(message, now)) continue;
      const consumer = this.nextWithCapacity();
      if (!consumer) return;
      this.deliverTo(consumer, message);
    }
  }

  settle(lockToken: string, disposition: Disposition, via: "link" | "management", link: LinkRef | undefined): SettleResult {
    const message = this.byLock.get(lockToken);
    const wallNow = this.owner.context.wallNow();
    if (!message?.lock || message.lock.lockedUntilMs <= wallNow) {
      if (message) this.expireLock(message);
      this.logSettlement(message, lockToken, disposition, via, link, "lockLost");
      return "lockLost";
    }
    if (disposition.kind === "deadLetter" && this.isDeadLetterQueue) return "notAllowed";
    this.unlock(message);
    this.logSettlement(message, lockToken, disposition, via, link, "ok");
    switch (disposition.kind) {
      case "complete":
        this.messages.delete(message.sequenceNumber);
        break;
      case "abandon":
        this.applyProperties(message, disposition.propertiesToModify);
        this.countFailedDelivery(message);
        break;
      case "defer":
        this.applyProperties(message, disposition.propertiesToModify);
        message.state = "deferred";
        break;
      case "deadLetter":
        this.deadLetter(message, disposition.reason, disposition.description, disposition.propertiesToModify);
        break;
    }
    this.dispatch();
    return "ok";
  }

  /** New locked-until (wall ms), or undefined when the lock is gone. */
  renewLock(lockToken: string): number | undefined {
    const message = this.byLock.get(lockToken);
    if (!message?.lock || message.lock.lockedUntilMs <= this.owner.context.wallNow()) return undefined;
    message.lock.lockedUntilMs = this.owner.context.wallNow() + this.owner.settings.lockDurationMs;
    this.owner.context.log.append({ kind: "lockRenewed", ...this.ref(message), lockToken, lockedUntil: message.lock.lockedUntilMs });
    return message.lock.lockedUntilMs;
  }

  /** Messages from a sequence number on, in sequence order, including locked, deferred and scheduled ones. */
  peek(fromSequenceNumber: number, count: number): StoredMessage[] {
    return [...this.messages.values()]
      .filter((m) => m.sequenceNumber >= fromSequenceNumber)
      .sort((a, b) => a.sequenceNumber - b.sequenceNumber)
      .slice(0, Math.max(0, count));
  }

  /** The message as a peek returns it: broker annotations including its state, no lock token. */
  encodeForPeek(message: StoredMessage): Buffer {
    const annotations = this.brokerAnnotations(message);
    annotations.set("x-opt-message-state", types.wrap_int(MESSAGE_STATE_CODE[message.state]));
    return encodeMessage(message.bare, { deliveryCount: message.deliveryCount, ttlMs: this.headerTtl(message), annotations });
  }

  /** Applies lock expiry, scheduled activation and TTL expiry due by now, then dispatches. */
  sweep(): void {
    const clockNow = this.owner.context.clock.now();
    const wallNow = this.owner.context.wallNow();
    for (const message of [...this.messages.values()]) {
      if (message.lock && message.lock.lockedUntilMs <= wallNow) this.expireLock(message);
      else if (message.state === "scheduled" && message.enqueuedAtMs <= clockNow) message.state = "active";
      else if (message.state === "active" && !message.lock) this.expireIfDue(message, clockNow);
    }
    this.dispatch();
  }

  clear(): void {
    this.messages.clear();
    this.byLock.clear();
  }

  private nextWithCapacity(): Consumer | undefined {
    const n = this.consumers.length;
    for (let i = 0; i < n; i++) {
      const consumer = this.consumers[(this.nextConsumer + i) % n]!;
      if (consumer.capacity() > 0) {
        this.nextConsumer = (this.nextConsumer + i + 1) % n;
        return consumer;
      }
    }
    return undefined;
  }

  private deliverTo(consumer: Consumer, message: StoredMessage): void {
    const annotations = this.brokerAnnotations(message);
    let lockToken: string | undefined;
    if (consumer.receiveMode === "peekLock") {
      lockToken = newLockToken();
      message.lock = { token: lockToken, lockedUntilMs: this.owner.context.wallNow() + this.owner.settings.lockDurationMs, holder: consumer };
      this.byLock.set(lockToken, message);
      annotations.set("x-opt-locked-until", types.wrap_timestamp(message.lock.lockedUntilMs));
      annotations.set("x-opt-lock-token", types.wrap_uuid(Buffer.from(lockToken.replace(/-/g, ""), "hex")));
    } else {
      this.messages.delete(message.sequenceNumber);
    }
    const encoded = encodeMessage(message.bare, { deliveryCount: message.deliveryCount, ttlMs: this.headerTtl(message), annotations });
    consumer.deliver(encoded, lockToken);
    this.owner.context.log.append({
      kind: "delivered",
      ...this.ref(message),
      deliveryCount: message.deliveryCount,
      lockToken,
      receiveMode: consumer.receiveMode,
      link: consumer.ref,
    });
  }

  private brokerAnnotations(message: StoredMessage): TypedMap {
    const annotations: TypedMap = new Map<string, Typed>([
      ["x-opt-sequence-number", types.wrap_long(message.sequenceNumber)],
      ["x-opt-enqueued-time", types.wrap_timestamp(message.enqueuedAtMs)],
    ]);
    if (message.deadLetterSource !== undefined) annotations.set("x-opt-deadletter-source", types.wrap_string(message.deadLetterSource));
    return annotations;
  }

  /** The header TTL the receiver sees: the effective TTL, when it fits the header's uint. */
  private headerTtl(message: StoredMessage): number | undefined {
    const ttl = message.expiresAtMs >= NEVER_MS ? undefined : message.expiresAtMs - message.enqueuedAtMs;
    return ttl !== undefined && ttl <= 0xffff_ffff ? ttl : message.bare.ttlMs;
  }

  private expireLock(message: StoredMessage): void {
    const lock = message.lock;
    if (!lock) return;
    this.unlock(message);
    this.owner.context.log.append({ kind: "lockExpired", ...this.ref(message), lockToken: lock.token, deliveryCount: message.deliveryCount + 1 });
    this.countFailedDelivery(message);
  }

  private unlock(message: StoredMessage): void {
    if (message.lock) this.byLock.delete(message.lock.token);
    message.lock = undefined;
  }

  /** An abandoned or lock-expired delivery: count it, and dead-letter once the count reaches the maximum. */
  private countFailedDelivery(message: StoredMessage): void {
    message.deliveryCount += 1;
    const max = this.owner.settings.maxDeliveryCount;
    if (!this.isDeadLetterQueue && message.deliveryCount >= max) {
      this.deadLetter(message, "MaxDeliveryCountExceeded", `Message could not be consumed after ${max} delivery attempts.`, undefined);
    }
  }

  private expireIfDue(message: StoredMessage, clockNow: number): boolean {
    if (this.isDeadLetterQueue || message.expiresAtMs > clockNow) return false;
    const deadLettered = this.owner.settings.deadLetteringOnMessageExpiration;
    this.owner.context.log.append({ kind: "expired", ...this.ref(message), deadLettered });
    if (deadLettered) this.deadLetter(message, "TTLExpiredException", "The message expired and was dead lettered.", undefined);
    else this.messages.delete(message.sequenceNumber);
    return true;
  }

  private deadLetter(
    message: StoredMessage,
    reason: string | undefined,
    description: string | undefined,
    properties: Record<string, unknown> | undefined,
  ): void {
    const target = this.deadLetterTarget;
    if (!target) return;
    this.messages.delete(message.sequenceNumber);
    this.unlock(message);
    const bare = withApplicationProperties(message.bare, { ...properties, DeadLetterReason: reason, DeadLetterErrorDescription: description });
    this.owner.context.log.append({ kind: "deadLettered", ...this.ref(message), reason, description });
    target.add({ ...message, bare, state: "active", lock: undefined, deadLetterSource: this.owner.name, expiresAtMs: NEVER_MS });
  }

  private applyProperties(message: StoredMessage, properties: Record<string, unknown> | undefined): void {
    if (properties && Object.keys(properties).length > 0) message.bare = withApplicationProperties(message.bare, properties);
  }

  private logSettlement(
    message: StoredMessage | undefined,
    lockToken: string,
    disposition: Disposition,
    via: "link" | "management",
    link: LinkRef | undefined,
    result: "ok" | "lockLost",
  ): void {
    this.owner.context.log.append({
      kind: "settled",
      queue: this.owner.name,
      entityPath: this.path,
      messageId: message?.messageId ?? "",
      sequenceNumber: message?.sequenceNumber ?? -1,
      outcome: OUTCOMES[disposition.kind],
      lockToken,
      via,
      result,
      link,
    });
  }

  private ref(message: StoredMessage): { queue: string; entityPath: string; messageId: string; sequenceNumber: number } {
    return { queue: this.owner.name, entityPath: this.path, messageId: message.messageId, sequenceNumber: message.sequenceNumber };
  }
}
