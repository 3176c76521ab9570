/**
 * A sender's link, from the broker's side (an AMQP receiver): accepts single messages (format 0) and batches
 * (format 0x80013700, N data sections each holding an encoded message) into its queue, all or nothing.
 */
import rhea, { type EventContext, type Receiver } from "rhea";
import { BATCH_FORMAT, decodeBody, decodeMessage, plainValues, splitBatch } from "./amqp-message.js";
import type { LinkRef } from "./delivery-log.js";
import type { Queue } from "./queue.js";
import type { QueueRegistry } from "./queue-registry.js";

export class ProducerLink {
  private closed = false;

  constructor(
    private readonly receiver: Receiver,
    private readonly queue: Queue,
    private readonly registry: QueueRegistry,
    private readonly maxMessageSizeBytes: number,
    private readonly ref: () => LinkRef,
    private readonly onClosed: () => void,
  ) {}

  start(): void {
    this.receiver.on("message", (context) => this.onMessage(context));
    this.receiver.on("receiver_error", () => undefined);
    this.receiver.on("receiver_close", () => this.close());
  }

  detach(condition: string, description: string): void {
    if (this.closed) return;
    this.receiver.close({ condition, description });
    this.close();
  }

  forget(): void {
    this.close();
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    this.onClosed();
  }

  private onMessage(context: EventContext): void {
    const delivery = context.delivery;
    if (!delivery) return;
    if (this.registry.get(this.queue.name) !== this.queue) {
      delivery.reject({ condition: "amqp:not-found", description: `The messaging entity '${this.queue.name}' could not be found.` });
      return;
    }
    // rhea hands format-0 messages over decoded and other formats as raw bytes.
    const payloads = delivery.format === BATCH_FORMAT ? splitBatch(context.message as unknown as Buffer) : [rhea.message.encode(context.message)];
    const size = payloads.reduce((sum, p) => sum + p.length, 0);
    if (size > this.maxMessageSizeBytes) {
      delivery.reject({
        condition: "amqp:link:message-size-exceeded",
        description: `The received message (delivery-id:${delivery.id}, size:${size} bytes) exceeds the limit (${this.maxMessageSizeBytes} bytes) currently allowed on the link.`,
      });
      return;
    }
    let decoded;
    try {
      decoded = payloads.map((p) => decodeMessage(p));
    } catch (error) {
      delivery.reject({ condition: "amqp:decode-error", description: error instanceof Error ? error.message : String(error) });
      return;
    }
    const link = this.ref();
    for (const bare of decoded) {
      const m = this.queue.enqueue(bare);
      this.queue.context.log.append({
        kind: "enqueued",
        queue: this.queue.name,
        entityPath: this.queue.name,
        messageId: m.messageId,
        sequenceNumber: m.sequenceNumber,
        state: m.state === "scheduled" ? "scheduled" : "active",
        enqueuedAt: m.enqueuedAtMs,
        via: "link",
        link,
        body: decodeBody(bare),
        applicationProperties: plainValues(bare.applicationProperties),
      });
    }
    delivery.accept();
  }
}
