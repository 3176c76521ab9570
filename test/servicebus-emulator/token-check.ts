/**
 * The checks the service makes on a SAS token before accepting it for an audience (CBS put-token) or an HTTP request
 * (administration API): known rule, valid signature, not expired, and a resource scope that covers the audience.
 * Rights are not checked here: the service accepts a Listen-only token at put-token and refuses the sender link later.
 */
import { type AccessRight, type AccessRules } from "./access-rules.js";
import { hasValidSignature, parseSasToken } from "./sas-token.js";
import { covers, parseResourceUri, type ResourcePath } from "./resource-uri.js";

/** What a validated token grants. */
export interface Claim {
  ruleName: string;
  rights: readonly AccessRight[];
  /** The token's `sr`, decoded: the scope it was minted for. */
  scopeUri: string;
  scope: ResourcePath;
  expiresAtMs: number;
}

export type TokenCheck = { ok: true; claim: Claim } | { ok: false; description: string };

export interface TokenCheckContext {
  rules: AccessRules;
  nowMs: number;
  /** Host names this namespace answers to; an audience for any other host is foreign. */
  hosts: ReadonlySet<string>;
}

export function checkSasToken(token: string, audience: string, context: TokenCheckContext): TokenCheck {
  const parsed = parseSasToken(token);
  if (!parsed) return { ok: false, description: "MalformedToken: The credentials contained in the authorization header are not in the WRAP format." };
  const rule = context.rules.find(parsed.keyName);
  if (!rule || !hasValidSignature(parsed, rule.key)) {
    return { ok: false, description: "InvalidSignature: The token has an invalid signature." };
  }
  const expiresAtMs = parsed.expiresAtSeconds * 1000;
  if (expiresAtMs <= context.nowMs) {
    return { ok: false, description: `ExpiredToken: The token is expired. Expiration time: '${formatExpiry(expiresAtMs)}'` };
  }
  const scope = parseResourceUri(parsed.resourceUri);
  const target = parseResourceUri(audience);
  if (!scope || !target || !context.hosts.has(target.host) || !covers(scope, target)) {
    return { ok: false, description: "InvalidAudience: The authorization header contains a token with a wrong audience." };
  }
  return { ok: true, claim: { ruleName: rule.name, rights: rule.rights, scopeUri: parsed.resourceUri, scope, expiresAtMs } };
}

function formatExpiry(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace("T", " ")
    .replace(/\.\d+Z$/, "Z");
}
