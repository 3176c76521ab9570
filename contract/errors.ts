/**
 * Every failure the contract reports is a ContractError with a stable `code`, so the service can map it to a problem
 * type or saga error and the agent can decide what to log, without matching on message text.
 */

export abstract class ContractError extends Error {
  abstract readonly code: string;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A caller handed the contract something it cannot work with (a programming error, not hostile input). */
export class InvalidArgumentError extends ContractError {
  readonly code = "invalid_argument";
}

/** A key is not an Ed25519 key in the expected form. */
export class InvalidKeyError extends ContractError {
  readonly code = "invalid_key";
}

/** A value cannot be canonicalized without loss, so signing it would sign something other than what is sent. */
export class NonJsonValueError extends ContractError {
  readonly code = "non_json_value";

  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super(`value at ${path || "/"} is not representable as canonical JSON: ${reason}`);
  }
}

export interface SchemaIssue {
  /** JSON pointer of the failing field, "" for the whole message. */
  path: string;
  message: string;
}

/** A message does not match its schema. */
export class MessageSchemaError extends ContractError {
  readonly code = "schema_invalid";

  constructor(
    readonly messageType: string,
    readonly issues: readonly SchemaIssue[],
  ) {
    const summary = issues
      .slice(0, 5)
      .map((i) => `${i.path || "/"}: ${i.message}`)
      .join("; ");
    super(`${messageType} is not valid: ${summary}${issues.length > 5 ? `; and ${issues.length - 5} more` : ""}`);
  }
}

export type VersionProblem = "newer" | "older" | "unrecognised";

/** A message's `version` is one this reader does not implement. */
export class UnsupportedVersionError extends ContractError {
  readonly code = "unsupported_version";

  constructor(
    message: string,
    readonly messageType: string,
    readonly problem: VersionProblem,
    readonly received: unknown,
    readonly supported: readonly number[],
  ) {
    super(message);
  }
}

/** The signature does not verify with the key the caller trusts (forged, tampered, wrong key or wrong message type). */
export class BadSignatureError extends ContractError {
  readonly code = "bad_signature";
}

/** A correctly signed message that is addressed to, or claims to come from, a different node. */
export class WrongNodeError extends ContractError {
  readonly code = "wrong_node";

  constructor(
    readonly expectedNodeId: string,
    readonly actualNodeId: string,
  ) {
    super(`message is for node ${actualNodeId}, expected node ${expectedNodeId}`);
  }
}

export class EnvelopeExpiredError extends ContractError {
  readonly code = "envelope_expired";
}

export class EnvelopeNotYetValidError extends ContractError {
  readonly code = "envelope_not_yet_valid";
}

export interface SecretFindingSummary {
  path: string;
  kind: string;
}

/** A message about to be sent carries something that looks like a secret; secrets go over the node API only. */
export class SecretInMessageError extends ContractError {
  readonly code = "secret_in_message";

  constructor(
    readonly messageType: string,
    readonly findings: readonly SecretFindingSummary[],
  ) {
    // Paths and kinds only: echoing the value would leak the very secret being refused.
    super(
      `${messageType} must not carry secrets; reference them by id and fetch them over the node API. Secret-like values at: ${findings
        .map((f) => `${f.path} (${f.kind})`)
        .join(", ")}`,
    );
  }
}

/** Signature, Signature-Input or Content-Digest is absent. */
export class MissingSignatureHeadersError extends ContractError {
  readonly code = "missing_signature_headers";

  constructor(readonly missing: readonly string[]) {
    super(`request is not signed: missing ${missing.join(", ")}`);
  }
}

/** The signature headers are present but do not follow the node-request signature profile. */
export class MalformedSignatureError extends ContractError {
  readonly code = "malformed_signature";
}

export class UnknownKeyError extends ContractError {
  readonly code = "unknown_key";

  constructor(readonly keyId: string) {
    super(`no registered key with id ${keyId}`);
  }
}

/** The body received is not the body the Content-Digest describes. */
export class ContentDigestMismatchError extends ContractError {
  readonly code = "content_digest_mismatch";
}

/** `created` is older than the allowed skew: a stale or replayed request. */
export class StaleSignatureError extends ContractError {
  readonly code = "signature_too_old";
}

/** `created` is further in the future than the allowed skew. */
export class FutureSignatureError extends ContractError {
  readonly code = "signature_in_future";
}

/** The nonce was already used within its validity window. */
export class ReplayedRequestError extends ContractError {
  readonly code = "replayed_request";
}
