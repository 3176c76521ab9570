/**
 * The namespace's queues. Names are case-insensitive, as on the service; an entity path resolves to a queue's
 * active store or, with a `/$DeadLetterQueue` suffix, its dead-letter store.
 */
import type { MessageEntity } from "./message-entity.js";
import { DEAD_LETTER_SUFFIX, Queue, type BrokerContext } from "./queue.js";
import type { QueueSettings } from "./queue-settings.js";

export interface ResolvedEntity {
  queue: Queue;
  entity: MessageEntity;
}

export class QueueRegistry {
  private readonly queues = new Map<string, Queue>();

  constructor(private readonly context: BrokerContext) {}

  /** The new queue, or undefined when one of that name exists. */
  create(name: string, settings: QueueSettings): Queue | undefined {
    const key = name.toLowerCase();
    if (this.queues.has(key)) return undefined;
    const queue = new Queue(name, settings, this.context);
    this.queues.set(key, queue);
    return queue;
  }

  get(name: string): Queue | undefined {
    return this.queues.get(name.toLowerCase());
  }

  /** Deletes the queue and detaches its links, as the service does. False when there was none. */
  delete(name: string): boolean {
    const queue = this.get(name);
    if (!queue) return false;
    this.queues.delete(name.toLowerCase());
    const description = `The messaging entity '${queue.name}' has been deleted.`;
    queue.active.detachAll("amqp:not-found", description);
    queue.deadLetter.detachAll("amqp:not-found", description);
    queue.clear();
    return true;
  }

  list(): Queue[] {
    return [...this.queues.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  resolve(entityPath: string): ResolvedEntity | undefined {
    const segments = entityPath.split("/").filter((s) => s !== "");
    const last = segments[segments.length - 1];
    const deadLetter = last !== undefined && last.toLowerCase() === DEAD_LETTER_SUFFIX.toLowerCase();
    const queue = this.get((deadLetter ? segments.slice(0, -1) : segments).join("/"));
    if (!queue) return undefined;
    return { queue, entity: deadLetter ? queue.deadLetter : queue.active };
  }

  sweep(): void {
    for (const queue of this.queues.values()) queue.sweep();
  }

  clear(): void {
    for (const name of [...this.queues.keys()]) this.delete(name);
  }
}
