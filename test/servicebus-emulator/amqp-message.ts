/**
 * AMQP 1.0 messages as the broker keeps them. The bare message (properties, application properties, body, footer) is
 * kept as sent, byte for byte where the service never changes it (body, footer, and properties unless it assigns a
 * message id); the header and message annotations are rewritten on every delivery, as the service does. Typed values
 * are kept typed so an `int` application property is not re-sent as a `uint`.
 */
import rhea, { type Typed } from "rhea";

const { message } = rhea;

interface AmqpReader {
  position: number;
  read(): Typed;
  remaining(): number;
}

interface AmqpWriter {
  write(value: Typed): void;
  toBuffer(): Buffer;
}

/** rhea's codec, with the Reader and Writer classes its typings declare but do not expose on `types`. */
const types = rhea.types as typeof rhea.types & {
  Reader: new (buffer: Buffer) => AmqpReader;
  Writer: new () => AmqpWriter;
};

export type TypedMap = Map<string, Typed>;

/** Message format of a batch: one transfer whose body is N data sections, each an encoded message. */
export const BATCH_FORMAT = 0x80013700;

const SECTION = {
  header: 0x70,
  deliveryAnnotations: 0x71,
  messageAnnotations: 0x72,
  properties: 0x73,
  applicationProperties: 0x74,
  data: 0x75,
} as const;

const SYMBOLIC_SECTIONS: Record<string, number> = {
  "amqp:header:list": 0x70,
  "amqp:delivery-annotations:map": 0x71,
  "amqp:message-annotations:map": 0x72,
  "amqp:properties:list": 0x73,
  "amqp:application-properties:map": 0x74,
  "amqp:data:binary": 0x75,
  "amqp:amqp-sequence:list": 0x76,
  "amqp:amqp-value:*": 0x77,
  "amqp:footer:map": 0x78,
};

export interface MessageProperties {
  message_id?: unknown;
  user_id?: Buffer;
  to?: string;
  subject?: string;
  reply_to?: string;
  correlation_id?: unknown;
  content_type?: string;
  content_encoding?: string;
  absolute_expiry_time?: Date;
  creation_time?: Date;
  group_id?: string;
  group_sequence?: number;
  reply_to_group_id?: string;
}

export interface BareMessage {
  durable: boolean;
  priority: number;
  /** Header time-to-live in ms, when the sender set one. */
  ttlMs: number | undefined;
  /** Message annotations as sent (e.g. `x-opt-scheduled-enqueue-time`, `x-opt-partition-key`). */
  annotations: TypedMap;
  properties: MessageProperties;
  /** The properties section verbatim; undefined when absent or after the broker rewrote it. */
  propertiesRaw: Buffer | undefined;
  applicationProperties: TypedMap;
  /** Body sections and footer, verbatim. */
  bodyRaw: Buffer;
}

export function decodeMessage(encoded: Buffer): BareMessage {
  const result: BareMessage = {
    durable: false,
    priority: 4,
    ttlMs: undefined,
    annotations: new Map(),
    properties: {},
    propertiesRaw: undefined,
    applicationProperties: new Map(),
    bodyRaw: Buffer.alloc(0),
  };
  const reader = new types.Reader(encoded);
  // Each read consumes one section; a message has at most seven kinds, and the body ends the loop.
  while (reader.remaining() > 0) {
    const start = reader.position;
    const section = reader.read();
    const raw = encoded.subarray(start, reader.position);
    const code = sectionCode(section);
    if (code === SECTION.header) {
      const header = message.decode(raw) as { durable?: boolean; priority?: number; ttl?: number };
      result.durable = header.durable ?? false;
      result.priority = header.priority ?? 4;
      result.ttlMs = header.ttl;
    } else if (code === SECTION.messageAnnotations) {
      result.annotations = typedMap(section);
    } else if (code === SECTION.properties) {
      result.propertiesRaw = Buffer.from(raw);
      result.properties = pickProperties(message.decode(raw));
    } else if (code === SECTION.applicationProperties) {
      result.applicationProperties = typedMap(section);
    } else if (code !== SECTION.deliveryAnnotations) {
      // Body sections and the footer come last; the service relays them untouched.
      result.bodyRaw = Buffer.from(encoded.subarray(start));
      break;
    }
  }
  return result;
}

/** The encoded messages inside a batch transfer. */
export function splitBatch(payload: Buffer): Buffer[] {
  const reader = new types.Reader(payload);
  const parts: Buffer[] = [];
  while (reader.remaining() > 0) {
    const section = reader.read();
    if (sectionCode(section) === SECTION.data) parts.push(Buffer.from(section.value as Buffer));
  }
  return parts;
}

export interface DeliveryFields {
  deliveryCount: number;
  ttlMs: number | undefined;
  /** Annotations the broker adds (sequence number, enqueued time, lock...), over the sender's. */
  annotations: TypedMap;
}

export function encodeMessage(bare: BareMessage, fields: DeliveryFields): Buffer {
  const writer = new types.Writer();
  writer.write(
    types.described(
      types.wrap_ulong(SECTION.header),
      types.wrap_list([
        types.wrap_boolean(bare.durable),
        types.wrap_ubyte(bare.priority),
        fields.ttlMs === undefined ? types.wrap(null) : types.wrap_uint(fields.ttlMs),
        types.wrap_boolean(false),
        types.wrap_uint(fields.deliveryCount),
      ]),
    ),
  );
  const annotations = new Map([...bare.annotations, ...fields.annotations]);
  if (annotations.size > 0) writer.write(mapSection(SECTION.messageAnnotations, annotations, true));
  const parts = [writer.toBuffer(), bare.propertiesRaw ?? encodeProperties(bare.properties)];
  if (bare.applicationProperties.size > 0) {
    const props = new types.Writer();
    props.write(mapSection(SECTION.applicationProperties, bare.applicationProperties, false));
    parts.push(props.toBuffer());
  }
  parts.push(bare.bodyRaw);
  return Buffer.concat(parts);
}

/** Sets the message id the service assigns when the sender gave none. */
export function withMessageId(bare: BareMessage, messageId: string): BareMessage {
  return { ...bare, properties: { ...bare.properties, message_id: messageId }, propertiesRaw: undefined };
}

export function withApplicationProperties(bare: BareMessage, changes: Record<string, unknown>): BareMessage {
  const applicationProperties = new Map(bare.applicationProperties);
  for (const [key, value] of Object.entries(changes)) {
    if (value !== undefined) applicationProperties.set(key, types.wrap(value));
  }
  return { ...bare, applicationProperties };
}

export function plainValues(map: TypedMap): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of map) out[key] = types.unwrap(value);
  return out;
}

/** The body as an application sees it: JSON from a data section when it parses, else the raw value. */
export function decodeBody(bare: BareMessage): unknown {
  if (bare.bodyRaw.length === 0) return undefined;
  const body = (message.decode(bare.bodyRaw) as { body?: unknown }).body;
  if (isDataSection(body)) {
    const bytes = Array.isArray(body.content) ? Buffer.concat(body.content as Buffer[]) : (body.content as Buffer);
    try {
      return JSON.parse(bytes.toString("utf8")) as unknown;
    } catch {
      return bytes;
    }
  }
  return body;
}

function isDataSection(body: unknown): body is { typecode: number; content: unknown } {
  return typeof body === "object" && body !== null && (body as { typecode?: unknown }).typecode === SECTION.data;
}

function sectionCode(section: Typed): number | undefined {
  const descriptor = (section.descriptor as Typed | undefined)?.value as unknown;
  if (typeof descriptor === "number") return descriptor;
  if (typeof descriptor === "string") return SYMBOLIC_SECTIONS[descriptor];
  return undefined;
}

/** A described map section: reading it gives the map itself, whose value is its keys and values alternating. */
function typedMap(section: Typed): TypedMap {
  const items = (section.value as Typed[] | undefined) ?? [];
  const map: TypedMap = new Map();
  for (let i = 0; i + 1 < items.length; i += 2) map.set(String(items[i]!.value), items[i + 1]!);
  return map;
}

function mapSection(code: number, map: TypedMap, symbolKeys: boolean): Typed {
  const entries: Record<string, Typed> = {};
  for (const [key, value] of map) entries[key] = value;
  return types.described(types.wrap_ulong(code), symbolKeys ? types.wrap_symbolic_map(entries) : types.wrap_map(entries)) as Typed;
}

const PROPERTY_FIELDS = [
  ["message_id", (v: unknown) => types.wrap_message_id(v) as Typed],
  ["user_id", (v: unknown) => types.wrap_binary(v)],
  ["to", (v: unknown) => types.wrap_string(v)],
  ["subject", (v: unknown) => types.wrap_string(v)],
  ["reply_to", (v: unknown) => types.wrap_string(v)],
  ["correlation_id", (v: unknown) => types.wrap_message_id(v) as Typed],
  ["content_type", (v: unknown) => types.wrap_symbol(v)],
  ["content_encoding", (v: unknown) => types.wrap_symbol(v)],
  ["absolute_expiry_time", (v: unknown) => types.wrap_timestamp(v instanceof Date ? v.getTime() : v)],
  ["creation_time", (v: unknown) => types.wrap_timestamp(v instanceof Date ? v.getTime() : v)],
  ["group_id", (v: unknown) => types.wrap_string(v)],
  ["group_sequence", (v: unknown) => types.wrap_uint(v as number)],
  ["reply_to_group_id", (v: unknown) => types.wrap_string(v)],
] as const;

function encodeProperties(properties: MessageProperties): Buffer {
  const values = PROPERTY_FIELDS.map(([name, wrap]) => {
    const value = properties[name];
    return value === undefined || value === null ? types.wrap(null) : wrap(value);
  });
  while (values.length > 0 && values[values.length - 1]!.type.name === "Null") values.pop();
  const writer = new types.Writer();
  writer.write(types.described(types.wrap_ulong(SECTION.properties), types.wrap_list(values)) as Typed);
  return writer.toBuffer();
}

function pickProperties(decoded: Record<string, unknown>): MessageProperties {
  const out: Record<string, unknown> = {};
  for (const [name] of PROPERTY_FIELDS) {
    if (decoded[name] !== undefined && decoded[name] !== null) out[name] = decoded[name];
  }
  return out as MessageProperties;
}
