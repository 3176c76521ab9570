/**
 * Version gate, run before any other parsing: a reader must name the version problem ("upgrade the agent") instead
 * of reporting whatever field the newer format happened to change.
 */
import { MessageSchemaError, UnsupportedVersionError } from "./errors.js";

export interface VersionPolicy {
  messageType: string;
  /** Versions this reader implements, ascending. */
  supported: readonly number[];
  /** Who is reading, for the operator: "this flexnode-agent". */
  reader: string;
  /** What the operator should do when a message is newer than the reader. */
  whenNewer: string;
  /** What the operator should do when a message is older than the reader still accepts. */
  whenOlder: string;
}

function show(value: unknown): string {
  const text = value === undefined ? "nothing" : JSON.stringify(value);
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}

/** Returns the message's version or throws UnsupportedVersionError (MessageSchemaError if it is not an object). */
export function checkVersion(raw: unknown, policy: VersionPolicy): number {
  const { messageType, supported, reader } = policy;
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new MessageSchemaError(messageType, [{ path: "", message: "expected a JSON object" }]);
  }
  const version: unknown = (raw as Record<string, unknown>)["version"];
  const list = supported.join(", ");
  const min = Math.min(...supported);
  const max = Math.max(...supported);
  if (typeof version !== "number" || !Number.isSafeInteger(version) || version < 0) {
    throw new UnsupportedVersionError(
      `${messageType} has no recognisable version (got ${show(version)}); ${reader} understands version ${list}. The message is not a ${messageType} or is corrupt.`,
      messageType,
      "unrecognised",
      version,
      supported,
    );
  }
  if (supported.includes(version)) return version;
  if (version > max) {
    throw new UnsupportedVersionError(
      `${messageType} version ${version} is newer than ${reader} understands (up to version ${max}). ${policy.whenNewer}`,
      messageType,
      "newer",
      version,
      supported,
    );
  }
  if (version < min) {
    throw new UnsupportedVersionError(
      `${messageType} version ${version} is older than ${reader} still accepts (from version ${min}). ${policy.whenOlder}`,
      messageType,
      "older",
      version,
      supported,
    );
  }
  throw new UnsupportedVersionError(
    `${messageType} version ${version} is not one ${reader} understands (versions ${list}).`,
    messageType,
    "unrecognised",
    version,
    supported,
  );
}
