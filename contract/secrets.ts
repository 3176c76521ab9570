/**
 * Secret-shaped value detector. Queue messages sit in Service Bus, in dead-letter queues and in saga history, so
 * they must never carry secrets: envelopes name a one-time secret by id and the agent fetches it over the node API.
 * The check is heuristic and errs toward refusing; a refused message names the field, never the value.
 */
import { pointer } from "./json.js";

export type SecretKind = "bootstrap-token" | "shared-access-signature" | "pem-block" | "jwt" | "secret-named-field";

export interface SecretFinding {
  /** JSON pointer of the field (for a secret-looking key: the pointer of that key). */
  path: string;
  kind: SecretKind;
}

const VALUE_PATTERNS: readonly (readonly [SecretKind, RegExp])[] = [
  // Kubernetes bootstrap token "<id>.<secret>", also when embedded in a kubeconfig or Authorization header.
  ["bootstrap-token", /(?<![a-z0-9])[a-z0-9]{6}\.[a-z0-9]{16}(?![a-z0-9])/],
  // Service Bus / Event Hubs SAS tokens and connection strings, and storage SAS URLs (the `sig` parameter).
  ["shared-access-signature", /SharedAccessSignature|SharedAccessKey\s*=|[?&]sig=[^&\s]/i],
  // Any PEM block but a certificate: certificates are public (nodes need the cluster CA), keys and the rest are not.
  ["pem-block", /-----BEGIN (?!CERTIFICATE-----)/],
  ["jwt", /eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\./],
];

const SECRET_WORDS = new Set([
  "password",
  "passwd",
  "pwd",
  "passphrase",
  "secret",
  "secrets",
  "token",
  "tokens",
  "key",
  "apikey",
  "privatekey",
  "credential",
  "credentials",
  "sas",
  // "keys" is left out on purpose: sysctl names such as kernel.keys.maxkeys are ordinary step params.
]);

/** A secret-named field ending in one of these holds a reference or metadata about a secret, not the secret. */
const REFERENCE_SUFFIXES = new Set([
  "id",
  "ids",
  "ref",
  "refs",
  "reference",
  "name",
  "names",
  "path",
  "paths",
  "file",
  "dir",
  "url",
  "uri",
  "digest",
  "hash",
  "sha256",
  "thumbprint",
  "alg",
  "algorithm",
  "type",
  "kind",
  "version",
  "ttl",
  "expiry",
  "expires",
  "length",
  "size",
  "count",
  "group",
  "groups",
  "usage",
  "usages",
  "format",
]);

function words(name: string): string[] {
  return name
    .replace(/([a-z0-9])([A-Z])/g, "$1 $2")
    .replace(/([A-Z]+)([A-Z][a-z])/g, "$1 $2")
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter((w) => w.length > 0);
}

/** True when a field with this name and a string value is presumed to hold a secret. */
export function isSecretFieldName(name: string): boolean {
  const parts = words(name);
  const last = parts.at(-1);
  if (last === undefined || REFERENCE_SUFFIXES.has(last)) return false;
  // A public key is not a secret, whatever the field is called.
  if (parts.includes("public")) return false;
  return parts.some((w) => SECRET_WORDS.has(w)) || parts.join("").includes("connectionstring");
}

/** The kind of secret `text` looks like, or undefined. */
export function secretKindOf(text: string): SecretKind | undefined {
  for (const [kind, pattern] of VALUE_PATTERNS) if (pattern.test(text)) return kind;
  return undefined;
}

function scan(value: unknown, path: string, secretNamed: boolean, seen: Set<object>, out: SecretFinding[]): void {
  if (typeof value === "string") {
    const kind = secretKindOf(value);
    if (kind !== undefined) out.push({ path, kind });
    else if (secretNamed && value.length > 0) out.push({ path, kind: "secret-named-field" });
    return;
  }
  if (typeof value !== "object" || value === null || seen.has(value)) return;
  seen.add(value);
  if (Array.isArray(value)) {
    // An array under a secret-named field (tokens: ["…"]) is as secret as a single value.
    value.forEach((item: unknown, index) => scan(item, pointer(path, index), secretNamed, seen, out));
    return;
  }
  for (const [key, item] of Object.entries(value)) {
    const at = pointer(path, key);
    const keyKind = secretKindOf(key);
    if (keyKind !== undefined) out.push({ path: at, kind: keyKind });
    scan(item, at, isSecretFieldName(key), seen, out);
  }
}

/** Every secret-looking string in `value` (any JSON-like value, e.g. a whole queue message body). */
export function findSecrets(value: unknown): SecretFinding[] {
  const out: SecretFinding[] = [];
  scan(value, "", false, new Set(), out);
  return out;
}
