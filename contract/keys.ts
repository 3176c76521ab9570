/**
 * Ed25519 keys on the wire: the raw 32-byte public key as unpadded base64url (the JWK `x` member), named by its
 * RFC 7638 JWK thumbprint. Raw bytes keep enrolment bodies and registry rows short and carry no ASN.1 to parse;
 * the thumbprint is derived from the key itself, so a key id cannot be claimed for a different key.
 */
import { createHash, createPublicKey, type KeyObject } from "node:crypto";
import * as z from "zod";
import { InvalidKeyError } from "./errors.js";

/** True when `s` is the one unpadded base64url spelling of exactly `bytes` bytes (no alternative encodings). */
export function isBase64UrlOfLength(s: string, bytes: number): boolean {
  if (!/^[A-Za-z0-9_-]*$/.test(s) || s.length !== Math.ceil((bytes * 4) / 3)) return false;
  const decoded = Buffer.from(s, "base64url");
  return decoded.length === bytes && decoded.toString("base64url") === s;
}

export const ED25519_PUBLIC_KEY_BYTES = 32;

export const PublicKeySchema = z
  .string()
  .refine((s) => isBase64UrlOfLength(s, ED25519_PUBLIC_KEY_BYTES), "must be a raw 32-byte Ed25519 public key as unpadded base64url (43 characters)")
  .describe("Ed25519 public key, raw 32 bytes, base64url without padding");

export const KeyIdSchema = z
  .string()
  .refine((s) => isBase64UrlOfLength(s, 32), "must be an RFC 7638 SHA-256 JWK thumbprint, base64url without padding (43 characters)")
  .describe("Key id: RFC 7638 JWK thumbprint (SHA-256) of the Ed25519 public key");

export function assertEd25519(key: KeyObject, type: "public" | "private" | "any", role: string): void {
  if (key.asymmetricKeyType !== "ed25519") throw new InvalidKeyError(`${role} must be an Ed25519 key, got ${key.asymmetricKeyType ?? key.type}`);
  if (type !== "any" && key.type !== type) throw new InvalidKeyError(`${role} must be a ${type} key, got a ${key.type} key`);
}

/**
 * Imported keys by their encoding, so a key seen again (a node's every request, an enrolment's key id) is not parsed
 * again. KeyObjects are immutable; bounded, oldest out first.
 */
const imported = new Map<string, KeyObject>();
const IMPORTED_MAX = 4096;

export function importPublicKey(encoded: string): KeyObject {
  const known = imported.get(encoded);
  if (known) return known;
  if (!isBase64UrlOfLength(encoded, ED25519_PUBLIC_KEY_BYTES))
    throw new InvalidKeyError("public key must be a raw 32-byte Ed25519 key as unpadded base64url (43 characters)");
  let key: KeyObject;
  try {
    key = createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: encoded }, format: "jwk" });
  } catch (cause) {
    throw new InvalidKeyError("public key is not a usable Ed25519 key", { cause });
  }
  if (imported.size >= IMPORTED_MAX) imported.delete(imported.keys().next().value!);
  imported.set(encoded, key);
  return key;
}

/** Exported public halves by key: the service exports its own signing key's on every enrolment answer. */
const exported = new WeakMap<KeyObject, string>();

/** Accepts a private key too, because a signer only holds its private key and needs its own public form. */
export function exportPublicKey(key: KeyObject): string {
  const known = exported.get(key);
  if (known !== undefined) return known;
  assertEd25519(key, "any", "key");
  const pub = key.type === "private" ? createPublicKey(key) : key;
  const { x } = pub.export({ format: "jwk" });
  if (typeof x !== "string") throw new InvalidKeyError("key has no Ed25519 public component");
  exported.set(key, x);
  return x;
}

/** RFC 7638: SHA-256 over the required OKP members in lexicographic order, no whitespace. */
export function keyIdOf(key: KeyObject | string): string {
  // A string that imports is already the one spelling of its key (importPublicKey refuses any other): it is `x`.
  const x = typeof key === "string" ? (importPublicKey(key), key) : exportPublicKey(key);
  const thumbprintInput = `{"crv":"Ed25519","kty":"OKP","x":"${x}"}`;
  return createHash("sha256").update(thumbprintInput, "utf8").digest("base64url");
}
