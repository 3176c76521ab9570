/**
 * `<entity>/$management` operations the SDK uses for queues: renew-lock, schedule-message, cancel-scheduled-message,
 * peek-message, update-disposition. Each needs the right the service requires (Listen to read and settle, Send to
 * schedule); session, rule and deferred-receive operations answer 501.
 */
import rhea, { type Message } from "rhea";
import type { AccessRight } from "./access-rules.js";
import { decodeBody, decodeMessage, plainValues } from "./amqp-message.js";
import type { LinkRef } from "./delivery-log.js";
import { lockTokenFromWire } from "./lock-token.js";
import type { Disposition, MessageEntity } from "./message-entity.js";
import type { Queue } from "./queue.js";
import type { QueueRegistry } from "./queue-registry.js";
import type { Response } from "./request-response.js";

const { types } = rhea;

const TIMESTAMP_ARRAY = 0x83;
const LONG_ARRAY = 0x81;

const RIGHTS: Record<string, AccessRight> = {
  "com.microsoft:renew-lock": "Listen",
  "com.microsoft:peek-message": "Listen",
  "com.microsoft:update-disposition": "Listen",
  "com.microsoft:schedule-message": "Send",
  "com.microsoft:cancel-scheduled-message": "Send",
};

const LOCK_LOST: Response = {
  status: 410,
  condition: "com.microsoft:message-lock-lost",
  description: "The lock supplied is invalid. Either the lock expired, or the message has already been removed from the queue.",
};

export class ManagementEndpoint {
  constructor(
    /** The entity this `$management` node belongs to, e.g. `node-7` or `node-7/$DeadLetterQueue`. */
    private readonly entityPath: string,
    private readonly registry: QueueRegistry,
    /** The link the request came on, when the connection holds a claim with `right`; undefined otherwise. */
    private readonly authorize: (right: AccessRight) => LinkRef | undefined,
    private readonly resourceUri: string,
  ) {}

  handle(request: Message): Response {
    const operation = String((request.application_properties as Record<string, unknown> | undefined)?.["operation"] ?? "");
    const right = RIGHTS[operation];
    if (right === undefined) return { status: 501, condition: "amqp:not-implemented", description: `The emulator does not implement '${operation}'.` };
    const link = this.authorize(right);
    if (!link) {
      return {
        status: 401,
        condition: "amqp:unauthorized-access",
        description: `Unauthorized access. '${right}' claim(s) are required to perform this operation. Resource: '${this.resourceUri}'.`,
      };
    }
    const resolved = this.registry.resolve(this.entityPath);
    if (!resolved) return { status: 404, condition: "amqp:not-found", description: `The messaging entity '${this.resourceUri}' could not be found.` };
    const body = record(request.body);
    switch (operation) {
      case "com.microsoft:renew-lock":
        return renewLocks(resolved.entity, body);
      case "com.microsoft:peek-message":
        return peek(resolved.entity, body);
      case "com.microsoft:update-disposition":
        return updateDisposition(resolved.entity, body, link);
      case "com.microsoft:schedule-message":
        return resolved.entity === resolved.queue.active
          ? schedule(resolved.queue, body, link)
          : badRequest("Cannot schedule messages on a dead-letter queue.");
      default:
        return cancel(resolved.queue, body);
    }
  }
}

function renewLocks(entity: MessageEntity, body: Record<string, unknown>): Response {
  const expirations: number[] = [];
  for (const raw of list(body["lock-tokens"])) {
    const token = lockTokenFromWire(raw);
    const until = token === undefined ? undefined : entity.renewLock(token);
    if (until === undefined) return LOCK_LOST;
    expirations.push(until);
  }
  return ok({ expirations: types.wrap_array(expirations, TIMESTAMP_ARRAY, undefined) });
}

function peek(entity: MessageEntity, body: Record<string, unknown>): Response {
  const from = toNumber(body["from-sequence-number"]) ?? 1;
  const count = toNumber(body["message-count"]) ?? 1;
  const messages = entity.peek(from, count);
  if (messages.length === 0) return { status: 204, description: "No Content" };
  return ok({ messages: types.wrap_list(messages.map((m) => types.wrap_map({ message: types.wrap_binary(entity.encodeForPeek(m)) }))) });
}

function updateDisposition(entity: MessageEntity, body: Record<string, unknown>, link: LinkRef): Response {
  const disposition = toDisposition(body);
  if (!disposition) return badRequest(`Unknown disposition-status '${String(body["disposition-status"])}'.`);
  for (const raw of list(body["lock-tokens"])) {
    const token = lockTokenFromWire(raw);
    const result = token === undefined ? "lockLost" : entity.settle(token, disposition, "management", link);
    if (result === "lockLost") return LOCK_LOST;
    if (result === "notAllowed") return badRequest("A message in a dead-letter queue cannot be dead-lettered.");
  }
  return ok({});
}

function toDisposition(body: Record<string, unknown>): Disposition | undefined {
  const propertiesToModify = record(body["properties-to-modify"]);
  switch (body["disposition-status"]) {
    case "completed":
      return { kind: "complete" };
    case "abandoned":
      return { kind: "abandon", propertiesToModify };
    case "defered":
      return { kind: "defer", propertiesToModify };
    case "suspended":
      return {
        kind: "deadLetter",
        reason: optionalString(body["deadletter-reason"]),
        description: optionalString(body["deadletter-description"]),
        propertiesToModify,
      };
    default:
      return undefined;
  }
}

function schedule(queue: Queue, body: Record<string, unknown>, link: LinkRef): Response {
  const sequenceNumbers: number[] = [];
  for (const entry of list(body["messages"])) {
    const encoded = record(entry)["message"];
    if (!Buffer.isBuffer(encoded)) return badRequest("Each scheduled message needs an encoded 'message'.");
    const bare = decodeMessage(encoded);
    const at = rhea.types.unwrap(bare.annotations.get("x-opt-scheduled-enqueue-time") ?? types.wrap(null)) as unknown;
    if (!(at instanceof Date)) return badRequest("A scheduled message needs x-opt-scheduled-enqueue-time.");
    const m = queue.schedule(bare, at.getTime());
    queue.context.log.append({
      kind: "enqueued",
      queue: queue.name,
      entityPath: queue.name,
      messageId: m.messageId,
      sequenceNumber: m.sequenceNumber,
      state: m.state === "scheduled" ? "scheduled" : "active",
      enqueuedAt: m.enqueuedAtMs,
      via: "management",
      link,
      body: decodeBody(bare),
      applicationProperties: plainValues(bare.applicationProperties),
    });
    sequenceNumbers.push(m.sequenceNumber);
  }
  return ok({ "sequence-numbers": types.wrap_array(sequenceNumbers, LONG_ARRAY, undefined) });
}

function cancel(queue: Queue, body: Record<string, unknown>): Response {
  // Cancelling a message that already fired or never existed is not an error the SDK surfaces; nothing to do.
  for (const raw of list(body["sequence-numbers"])) {
    const sequenceNumber = toNumber(raw);
    if (sequenceNumber !== undefined) queue.cancelScheduled(sequenceNumber);
  }
  return ok({});
}

function ok(body: unknown): Response {
  return { status: 200, description: "OK", body };
}

function badRequest(description: string): Response {
  return { status: 400, condition: "amqp:invalid-field", description };
}

/** AMQP longs arrive as numbers, or as 8-byte big-endian buffers when the SDK sends Long values. */
function toNumber(value: unknown): number | undefined {
  if (typeof value === "number") return value;
  if (Buffer.isBuffer(value) && value.length === 8) return Number(value.readBigInt64BE());
  return undefined;
}

function list(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

function record(value: unknown): Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !Buffer.isBuffer(value) ? (value as Record<string, unknown>) : {};
}

function optionalString(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}
