/**
 * Shared Access Signature tokens as Service Bus issues and checks them:
 * `SharedAccessSignature sr=<urlencoded resource>&sig=<urlencoded base64 HMAC-SHA256>&se=<unix seconds>&skn=<rule>`,
 * where the HMAC key is the rule's key as UTF-8 and the signed string is `<sr as it appears in the token>\n<se>`.
 * Tests mint tokens with `signSasToken`; the emulator verifies them with `parseSasToken` + `hasValidSignature`.
 */
import { createHmac, timingSafeEqual } from "node:crypto";

export interface SasToken {
  /** Decoded resource URI the token grants access to. */
  resourceUri: string;
  /** The `sr` value exactly as it appears in the token; the signature covers this form, not the decoded one. */
  signedResource: string;
  /** Base64 signature, decoded from its URL encoding. */
  signature: string;
  /** Expiry in Unix seconds. */
  expiresAtSeconds: number;
  keyName: string;
}

const PREFIX = "SharedAccessSignature ";

export interface SignSasTokenOptions {
  /** e.g. `sb://127.0.0.1:5672/node-1`; scopes the token to that resource and everything under it. */
  resourceUri: string;
  keyName: string;
  key: string;
  expiresAtSeconds: number;
}

export function signSasToken(options: SignSasTokenOptions): string {
  const sr = encodeURIComponent(options.resourceUri);
  const expiry = Math.floor(options.expiresAtSeconds);
  const sig = encodeURIComponent(hmac(options.key, `${sr}\n${expiry}`));
  return `${PREFIX}sr=${sr}&sig=${sig}&se=${expiry}&skn=${encodeURIComponent(options.keyName)}`;
}

/** Parses the token format; undefined when a field is missing or malformed. Field order is free, as for the service. */
export function parseSasToken(token: string): SasToken | undefined {
  if (!token.startsWith(PREFIX)) return undefined;
  const fields = new Map<string, string>();
  for (const part of token.slice(PREFIX.length).trim().split("&")) {
    const eq = part.indexOf("=");
    if (eq <= 0) return undefined;
    fields.set(part.slice(0, eq), part.slice(eq + 1));
  }
  const sr = fields.get("sr");
  const sig = fields.get("sig");
  const se = fields.get("se");
  const skn = fields.get("skn");
  if (sr === undefined || sig === undefined || se === undefined || skn === undefined || !/^\d+$/.test(se)) return undefined;
  try {
    return {
      resourceUri: decodeURIComponent(sr),
      signedResource: sr,
      signature: decodeURIComponent(sig),
      expiresAtSeconds: Number(se),
      keyName: decodeURIComponent(skn),
    };
  } catch {
    return undefined;
  }
}

export function hasValidSignature(token: SasToken, key: string): boolean {
  const expected = Buffer.from(hmac(key, `${token.signedResource}\n${token.expiresAtSeconds}`));
  const actual = Buffer.from(token.signature);
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

function hmac(key: string, text: string): string {
  return createHmac("sha256", Buffer.from(key, "utf8")).update(text, "utf8").digest("base64");
}
