/**
 * A queue: its settings, its active store and its `$DeadLetterQueue`, and the service-side steps of accepting a
 * message (message id when the sender gave none, sequence number, TTL, scheduling by `x-opt-scheduled-enqueue-time`).
 */
import { randomUUID } from "node:crypto";
import rhea from "rhea";
import type { Clock } from "../support/index.js";
import { withMessageId, type BareMessage } from "./amqp-message.js";
import type { DeliveryLog } from "./delivery-log.js";
import { NEVER_MS } from "./iso-duration.js";
import { bytesToUuid } from "./lock-token.js";
import { MessageEntity, type StoredMessage } from "./message-entity.js";
import type { QueueSettings } from "./queue-settings.js";

export interface BrokerContext {
  clock: Clock;
  log: DeliveryLog;
  /** Wall-clock ms, for locks (the SDK renews them on real timers). */
  wallNow(): number;
}

/** What a message entity needs from the queue that owns it. */
export interface QueueOwner {
  readonly name: string;
  readonly settings: QueueSettings;
  readonly context: BrokerContext;
}

export const DEAD_LETTER_SUFFIX = "$DeadLetterQueue";

export class Queue implements QueueOwner {
  readonly active: MessageEntity;
  readonly deadLetter: MessageEntity;
  readonly createdAt: number;
  updatedAt: number;
  private nextSequenceNumber = 1;

  constructor(
    readonly name: string,
    public settings: QueueSettings,
    readonly context: BrokerContext,
  ) {
    this.deadLetter = new MessageEntity(`${name}/${DEAD_LETTER_SUFFIX}`, this, undefined);
    this.active = new MessageEntity(name, this, this.deadLetter);
    this.createdAt = context.clock.now();
    this.updatedAt = this.createdAt;
  }

  /** Accepts a sent message; one carrying a future `x-opt-scheduled-enqueue-time` is scheduled instead. */
  enqueue(bare: BareMessage): StoredMessage {
    const scheduledAt = timestampAnnotation(bare, "x-opt-scheduled-enqueue-time");
    const now = this.context.clock.now();
    return this.store(bare, scheduledAt !== undefined && scheduledAt > now ? scheduledAt : now);
  }

  /** `$management` schedule-message: the message becomes active at `atMs` (emulator clock). */
  schedule(bare: BareMessage, atMs: number): StoredMessage {
    return this.store(bare, Math.max(atMs, this.context.clock.now()));
  }

  cancelScheduled(sequenceNumber: number): boolean {
    const message = this.active.messages.get(sequenceNumber);
    if (message?.state !== "scheduled") return false;
    this.active.messages.delete(sequenceNumber);
    return true;
  }

  sweep(): void {
    this.active.sweep();
    this.deadLetter.sweep();
  }

  clear(): void {
    this.active.clear();
    this.deadLetter.clear();
  }

  counts(): { active: number; scheduled: number; deferred: number; locked: number; deadLettered: number } {
    let active = 0;
    let scheduled = 0;
    let deferred = 0;
    let locked = 0;
    for (const m of this.active.messages.values()) {
      if (m.state === "scheduled") scheduled++;
      else if (m.state === "deferred") deferred++;
      else active++;
      if (m.lock) locked++;
    }
    return { active, scheduled, deferred, locked, deadLettered: this.deadLetter.messages.size };
  }

  sizeInBytes(): number {
    let size = 0;
    for (const entity of [this.active, this.deadLetter]) {
      for (const m of entity.messages.values()) size += m.bare.bodyRaw.length + (m.bare.propertiesRaw?.length ?? 0);
    }
    return size;
  }

  private store(bare: BareMessage, activeAt: number): StoredMessage {
    const id = messageIdOf(bare);
    const withId = id === undefined ? withMessageId(bare, randomUUID().replace(/-/g, "")) : bare;
    const ttl = Math.min(bare.ttlMs ?? NEVER_MS, this.settings.defaultMessageTimeToLiveMs);
    const message: StoredMessage = {
      sequenceNumber: this.nextSequenceNumber++,
      messageId: id ?? String(withId.properties.message_id),
      bare: withId,
      enqueuedAtMs: activeAt,
      expiresAtMs: Math.min(activeAt + ttl, NEVER_MS),
      deliveryCount: 0,
      state: activeAt > this.context.clock.now() ? "scheduled" : "active",
      lock: undefined,
      deadLetterSource: undefined,
    };
    this.active.add(message);
    return message;
  }
}

function messageIdOf(bare: BareMessage): string | undefined {
  const id = bare.properties.message_id;
  if (id === undefined || id === null || id === "") return undefined;
  if (Buffer.isBuffer(id)) return id.length === 16 ? bytesToUuid(id) : id.toString("hex");
  return String(id);
}

function timestampAnnotation(bare: BareMessage, name: string): number | undefined {
  const typed = bare.annotations.get(name);
  if (!typed) return undefined;
  const value = rhea.types.unwrap(typed) as unknown;
  if (value instanceof Date) return value.getTime();
  return typeof value === "number" ? value : undefined;
}
