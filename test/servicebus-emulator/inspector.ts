/** Read-only views of the broker's state for assertions: queues with their counts, and the messages they hold. */
import { decodeBody, plainValues } from "./amqp-message.js";
import type { MessageState, StoredMessage } from "./message-entity.js";
import type { QueueRegistry } from "./queue-registry.js";
import type { QueueSettings } from "./queue-settings.js";

export interface QueueSummary {
  name: string;
  /** Available or locked (not scheduled, not deferred). */
  active: number;
  locked: number;
  scheduled: number;
  deferred: number;
  deadLettered: number;
  settings: QueueSettings;
}

export interface MessageView {
  sequenceNumber: number;
  messageId: string;
  state: MessageState;
  deliveryCount: number;
  /** Emulator clock ms (for a scheduled message, when it becomes active). */
  enqueuedAt: number;
  /** Wall-clock ms, while locked. */
  lockedUntil: number | undefined;
  body: unknown;
  subject: string | undefined;
  correlationId: unknown;
  applicationProperties: Record<string, unknown>;
  deadLetterReason: string | undefined;
  deadLetterErrorDescription: string | undefined;
}

export class EmulatorInspector {
  constructor(private readonly registry: QueueRegistry) {}

  queues(): QueueSummary[] {
    return this.registry.list().map((queue) => ({ name: queue.name, ...queue.counts(), settings: queue.settings }));
  }

  queue(name: string): QueueSummary | undefined {
    return this.queues().find((q) => q.name.toLowerCase() === name.toLowerCase());
  }

  /** Messages of a queue (or its dead-letter queue) in sequence order; empty when the queue does not exist. */
  messages(name: string, options: { deadLetter?: boolean } = {}): MessageView[] {
    const queue = this.registry.get(name);
    if (!queue) return [];
    const entity = options.deadLetter ? queue.deadLetter : queue.active;
    return [...entity.messages.values()].sort((a, b) => a.sequenceNumber - b.sequenceNumber).map(view);
  }
}

function view(message: StoredMessage): MessageView {
  const applicationProperties = plainValues(message.bare.applicationProperties);
  const reason = applicationProperties["DeadLetterReason"];
  const description = applicationProperties["DeadLetterErrorDescription"];
  return {
    sequenceNumber: message.sequenceNumber,
    messageId: message.messageId,
    state: message.state,
    deliveryCount: message.deliveryCount,
    enqueuedAt: message.enqueuedAtMs,
    lockedUntil: message.lock?.lockedUntilMs,
    body: decodeBody(message.bare),
    subject: message.bare.properties.subject,
    correlationId: message.bare.properties.correlation_id,
    applicationProperties,
    deadLetterReason: typeof reason === "string" ? reason : undefined,
    deadLetterErrorDescription: typeof description === "string" ? description : undefined,
  };
}
