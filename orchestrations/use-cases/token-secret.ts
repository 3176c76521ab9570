/**
 * Enrolment token format `fnt.<tokenId>.<secret>`: a 64-bit public id (lets the service find the record with a point
 * read and lets admins name a token without its secret) and a 256-bit secret, of which only a SHA-256 is stored.
 * High-entropy secrets need no salt or slow hash: guessing is hopeless, and a leaked table reveals nothing usable.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

const PATTERN = /^fnt\.([0-9a-f]{16})\.([A-Za-z0-9_-]{43})$/;

export interface MintedToken {
  tokenId: string;
  /** The whole token, shown to the admin once and never stored. */
  token: string;
  secretHash: string;
}

export function mintToken(): MintedToken {
  const tokenId = randomBytes(8).toString("hex");
  const secret = randomBytes(32).toString("base64url");
  return { tokenId, token: `fnt.${tokenId}.${secret}`, secretHash: hashSecret(secret) };
}

export function parseToken(token: string): { tokenId: string; secret: string } | undefined {
  const [, tokenId, secret] = PATTERN.exec(token) ?? [];
  return tokenId && secret ? { tokenId, secret } : undefined;
}

export function hashSecret(secret: string): string {
  return createHash("sha256").update(secret, "utf8").digest("hex");
}

export function secretMatches(secret: string, storedHash: string): boolean {
  const a = Buffer.from(hashSecret(secret), "hex");
  const b = Buffer.from(storedHash, "hex");
  return a.length === b.length && timingSafeEqual(a, b);
}

export const TOKEN_PATTERN = PATTERN;
