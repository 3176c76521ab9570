/**
 * Bootstrap tokens, the two halves the emulator plays:
 * - validation of `bootstrap.kubernetes.io/token` Secrets on create. The real API server does NOT do this (a
 *   malformed token Secret is stored and then silently never authenticates); the emulator answers 422 instead, so a
 *   service bug shows up as an error at the call that caused it rather than as a node that never joins.
 * - the API server's bootstrap token authenticator (`plugin/pkg/auth/authenticator/token/bootstrap`): token →
 *   `system:bootstrap:<id>` in `system:bootstrappers` plus the Secret's auth-extra-groups, if the Secret exists, is
 *   meant for authentication, matches and has not expired.
 */
import { timingSafeEqual } from "node:crypto";
import { causes, type StatusCause } from "./status.js";

export const BOOTSTRAP_TOKEN_TYPE = "bootstrap.kubernetes.io/token";
export const BOOTSTRAP_NAMESPACE = "kube-system";
export const BOOTSTRAPPERS_GROUP = "system:bootstrappers";

const TOKEN = /^([a-z0-9]{6})\.([a-z0-9]{16})$/;
const TOKEN_ID = /^[a-z0-9]{6}$/;
const TOKEN_SECRET = /^[a-z0-9]{16}$/;
const EXTRA_GROUP = /^system:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]$/;
/** Go's time.RFC3339 as `time.Parse` accepts it (fractional seconds allowed). */
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

export interface UserInfo {
  username: string;
  groups: string[];
}

/** Problems with a token Secret's namespace, name and decoded data; empty when it is a usable token. */
export function bootstrapSecretProblems(namespace: string, name: string, data: Record<string, string>): StatusCause[] {
  const out: StatusCause[] = [];
  if (namespace !== BOOTSTRAP_NAMESPACE) out.push(causes.invalid("metadata.namespace", namespace, `bootstrap token Secrets must be in ${BOOTSTRAP_NAMESPACE}`));
  const id = data["token-id"];
  if (id === undefined) out.push(causes.required("data[token-id]", "token-id is required"));
  else if (!TOKEN_ID.test(id)) out.push(causes.invalid("data[token-id]", id, "must match [a-z0-9]{6}"));
  if (id !== undefined && name !== `bootstrap-token-${id}`)
    out.push(causes.invalid("metadata.name", name, `must be bootstrap-token-<token-id> (bootstrap-token-${id})`));
  const secret = data["token-secret"];
  if (secret === undefined) out.push(causes.required("data[token-secret]", "token-secret is required"));
  else if (!TOKEN_SECRET.test(secret)) out.push(causes.invalid("data[token-secret]", "<redacted>", "must match [a-z0-9]{16}"));
  const expiration = data["expiration"];
  if (expiration === undefined) out.push(causes.required("data[expiration]", "the emulator requires an expiry on bootstrap tokens"));
  else if (parseRfc3339(expiration) === undefined) out.push(causes.invalid("data[expiration]", expiration, "must be an RFC 3339 timestamp"));
  const groups = data["auth-extra-groups"];
  if (groups !== undefined) {
    for (const group of splitGroups(groups)) {
      if (!EXTRA_GROUP.test(group)) out.push(causes.invalid("data[auth-extra-groups]", group, "must match system:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]"));
    }
  }
  return out;
}

/** A bootstrap token Secret as the authenticator reads it. */
export interface TokenSecret {
  type: string;
  /** Decoded data. */
  data: Record<string, string>;
  deleting: boolean;
}

/**
 * The authenticator's answer for a bearer token: the user, or undefined when this token is not a valid bootstrap
 * token now. `lookup` finds `kube-system/bootstrap-token-<id>`.
 */
export function authenticateBootstrapToken(token: string, lookup: (tokenId: string) => TokenSecret | undefined, now: number): UserInfo | undefined {
  const match = TOKEN.exec(token);
  if (!match) return undefined;
  const [, id, secret] = match as unknown as [string, string, string];
  const stored = lookup(id);
  if (!stored || stored.deleting || stored.type !== BOOTSTRAP_TOKEN_TYPE) return undefined;
  const { data } = stored;
  if (data["token-id"] !== id) return undefined;
  const expected = Buffer.from(data["token-secret"] ?? "");
  const given = Buffer.from(secret);
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) return undefined;
  if (data["usage-bootstrap-authentication"] !== "true") return undefined;
  const expiration = data["expiration"];
  if (expiration !== undefined) {
    const at = parseRfc3339(expiration);
    if (at === undefined || now >= at) return undefined;
  }
  const extra = splitGroups(data["auth-extra-groups"] ?? "");
  if (extra.some((g) => !EXTRA_GROUP.test(g))) return undefined;
  return { username: `system:bootstrap:${id}`, groups: [BOOTSTRAPPERS_GROUP, ...extra] };
}

function splitGroups(value: string): string[] {
  return value
    .split(",")
    .map((g) => g.trim())
    .filter((g) => g !== "");
}

function parseRfc3339(value: string): number | undefined {
  if (!RFC3339.test(value)) return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}
