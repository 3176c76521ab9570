/**
 * Lock tokens. The service sends a message's lock token as its 16-byte delivery tag in .NET `Guid` byte order (the
 * first three fields little-endian); `$management` requests carry the same token as an AMQP uuid in RFC 4122 order.
 */
import { randomUUID } from "node:crypto";

export function newLockToken(): string {
  return randomUUID();
}

export function uuidToBytes(uuid: string): Buffer {
  const hex = uuid.replace(/-/g, "");
  if (!/^[0-9a-f]{32}$/i.test(hex)) throw new TypeError(`not a uuid: ${uuid}`);
  return Buffer.from(hex, "hex");
}

export function bytesToUuid(bytes: Buffer): string {
  if (bytes.length !== 16) throw new TypeError(`a uuid has 16 bytes, got ${bytes.length}`);
  const hex = bytes.toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The delivery tag the SDK turns back into `lockToken` (it reorders the bytes before formatting). */
export function lockTokenToDeliveryTag(lockToken: string): Buffer {
  const b = uuidToBytes(lockToken);
  return Buffer.from([b[3]!, b[2]!, b[1]!, b[0]!, b[5]!, b[4]!, b[7]!, b[6]!, ...b.subarray(8)]);
}

/** A lock token from a `$management` body: rhea decodes AMQP uuids to strings or 16-byte buffers. */
export function lockTokenFromWire(value: unknown): string | undefined {
  if (typeof value === "string") return value.toLowerCase();
  if (Buffer.isBuffer(value) && value.length === 16) return bytesToUuid(value);
  return undefined;
}
