/**
 * Detached Ed25519 signatures over JSON messages. The signed bytes are `domain + "\n" + JCS(message)` (RFC 8785),
 * so key order and whitespace on the wire do not matter, and the per-message-type domain keeps a signature made for
 * one message type from ever verifying as another.
 *
 * The message is signed with its `signature` block minus `value`: `alg` and `keyId` are covered too, so neither can
 * be swapped after signing.
 */
import { sign, verify, type KeyObject } from "node:crypto";
import canonicalize from "canonicalize";
import * as z from "zod";
import { BadSignatureError, InvalidArgumentError } from "./errors.js";
import { assertJsonObject, assertJsonValue, type JsonObject } from "./json.js";
import { assertEd25519, isBase64UrlOfLength, KeyIdSchema, keyIdOf } from "./keys.js";

export const SIGNATURE_ALG = "ed25519";
const ED25519_SIGNATURE_BYTES = 64;

/** One domain per message type and version; a new signed message type gets a new entry, never a reused one. */
export const SIGNING_DOMAINS = {
  stepEnvelope: "flexnode/step-envelope/v1",
  stepResult: "flexnode/step-result/v1",
} as const;

export const SignatureValueSchema = z
  .string()
  .refine((s) => isBase64UrlOfLength(s, ED25519_SIGNATURE_BYTES), "must be a 64-byte Ed25519 signature as unpadded base64url (86 characters)");

export const SignatureBlockSchema = z.strictObject({
  alg: z.literal(SIGNATURE_ALG),
  keyId: KeyIdSchema,
  value: SignatureValueSchema,
});
export type SignatureBlock = z.infer<typeof SignatureBlockSchema>;

function checkDomain(domain: string): void {
  // A newline in the domain would make "domain\nJSON" ambiguous between two domains.
  if (!/^[\x21-\x7e]{1,128}$/.test(domain)) throw new InvalidArgumentError("signing domain must be 1-128 printable ASCII characters without spaces");
}

/** The exact bytes that are signed; exported so other languages' implementations can be checked against it. */
export function canonicalSigningInput(domain: string, value: unknown): Buffer {
  checkDomain(domain);
  assertJsonValue(value);
  const json = canonicalize(value);
  if (json === undefined) throw new InvalidArgumentError("value has no canonical JSON form");
  return Buffer.from(`${domain}\n${json}`, "utf8");
}

export interface SignCanonicalOptions {
  domain: string;
  value: unknown;
  privateKey: KeyObject;
}

/** Returns the signature as unpadded base64url. */
export function signCanonical({ domain, value, privateKey }: SignCanonicalOptions): string {
  assertEd25519(privateKey, "private", "signing key");
  return sign(null, canonicalSigningInput(domain, value), privateKey).toString("base64url");
}

export interface VerifyCanonicalOptions {
  domain: string;
  value: unknown;
  signature: string;
  publicKey: KeyObject;
}

export function verifyCanonical({ domain, value, signature, publicKey }: VerifyCanonicalOptions): boolean {
  assertEd25519(publicKey, "any", "verification key");
  if (!isBase64UrlOfLength(signature, ED25519_SIGNATURE_BYTES)) return false;
  const data = canonicalSigningInput(domain, value);
  try {
    return verify(null, data, publicKey, Buffer.from(signature, "base64url"));
  } catch {
    return false;
  }
}

export type Signed<T extends JsonObject> = T & { signature: SignatureBlock };

export interface SealOptions<T extends JsonObject> {
  domain: string;
  /** The message without a `signature` member. */
  message: T;
  privateKey: KeyObject;
}

export function sealMessage<T extends JsonObject>({ domain, message, privateKey }: SealOptions<T>): Signed<T> {
  assertJsonObject(message);
  if ("signature" in message) throw new InvalidArgumentError("message to seal already has a signature member");
  assertEd25519(privateKey, "private", "signing key");
  const keyId = keyIdOf(privateKey);
  const covered = { ...message, signature: { alg: SIGNATURE_ALG, keyId } };
  const value = signCanonical({ domain, value: covered, privateKey });
  return { ...message, signature: { alg: SIGNATURE_ALG, keyId, value } };
}

export interface VerifySealedOptions {
  domain: string;
  message: JsonObject & { signature: SignatureBlock };
  publicKey: KeyObject;
}

/** Throws BadSignatureError unless `message` was sealed under `domain` by the holder of `publicKey`. */
export function verifySealedMessage({ domain, message, publicKey }: VerifySealedOptions): void {
  const { signature, ...rest } = message;
  const expectedKeyId = keyIdOf(publicKey);
  if (signature.keyId !== expectedKeyId) {
    throw new BadSignatureError(`signed with key ${signature.keyId}, but the trusted key is ${expectedKeyId}`);
  }
  const covered = { ...rest, signature: { alg: signature.alg, keyId: signature.keyId } };
  if (!verifyCanonical({ domain, value: covered, signature: signature.value, publicKey })) {
    throw new BadSignatureError(`signature does not verify for ${domain}: the message was altered or signed for a different purpose`);
  }
}
