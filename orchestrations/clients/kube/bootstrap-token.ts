/**
 * Kubelet TLS-bootstrap tokens: `<id>.<secret>` ([a-z0-9]{6}.[a-z0-9]{16}) stored as a `bootstrap.kubernetes.io/token`
 * Secret in kube-system. The API server's bootstrap authenticator turns the token into user `system:bootstrap:<id>` in
 * `system:bootstrappers` plus the Secret's auth-extra-groups; a per-pool extra group is what the pool's RBAC binds.
 * Crypto-random, so never call this from orchestrator code (not replay-safe): only from an activity.
 */
import { randomInt } from "node:crypto";
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE, NODE_ID_LABEL, POOL_LABEL } from "./labels.js";

export const BOOTSTRAP_TOKEN_SECRET_TYPE = "bootstrap.kubernetes.io/token";
export const BOOTSTRAP_TOKEN_NAMESPACE = "kube-system";
export const BOOTSTRAP_TOKEN_PATTERN = /^([a-z0-9]{6})\.([a-z0-9]{16})$/;

/** What the bootstrap authenticator accepts as an extra group (k8s.io/cluster-bootstrap `BootstrapGroupPattern`). */
const BOOTSTRAP_GROUP_PATTERN = /^system:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]$/;
const POOL_PATTERN = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const LABEL_VALUE_PATTERN = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;
const ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";

/** The group a pool's bootstrap tokens carry, and the subject of the pool's bootstrap RBAC. */
export function poolBootstrapGroup(pool: string): string {
  if (!POOL_PATTERN.test(pool)) throw new RangeError(`pool name ${JSON.stringify(pool)} is not a DNS label`);
  const group = `system:bootstrappers:flexnode:${pool}`;
  // A DNS label always fits the pattern; the check keeps the two rules from drifting apart silently.
  if (!BOOTSTRAP_GROUP_PATTERN.test(group)) throw new RangeError(`${group} is not a valid bootstrap group`);
  return group;
}

export interface BootstrapTokenSecret {
  tokenId: string;
  /** `<id>.<secret>`: goes into the node's bootstrap kubeconfig only, never into logs or saga history. */
  token: string;
  secret: { name: string; type: string; stringData: Record<string, string>; labels: Record<string, string> };
}

/**
 * `token` (optional) reuses a token the caller already holds, e.g. one it stored sealed before creating the Secret so a
 * retried activity recreates the same Secret instead of minting a second token. Without it a fresh one is drawn.
 */
export function bootstrapTokenSecret(options: { pool: string; nodeId: string; expiresAt: Date; token?: string }): BootstrapTokenSecret {
  const group = poolBootstrapGroup(options.pool);
  if (!LABEL_VALUE_PATTERN.test(options.nodeId) || options.nodeId === "")
    throw new RangeError(`node id ${JSON.stringify(options.nodeId)} is not a label value`);
  const [tokenId, tokenSecret] = options.token === undefined ? newBootstrapToken() : splitToken(options.token);
  return {
    tokenId,
    token: `${tokenId}.${tokenSecret}`,
    secret: {
      name: `bootstrap-token-${tokenId}`,
      type: BOOTSTRAP_TOKEN_SECRET_TYPE,
      stringData: {
        description: `flexnode-onboarding kubelet bootstrap for node ${options.nodeId} in pool ${options.pool}`,
        "token-id": tokenId,
        "token-secret": tokenSecret,
        expiration: rfc3339(options.expiresAt),
        // Authentication only: signing is for kubeadm's cluster-info discovery (the bootstrapsigner signs the
        // kube-public ConfigMap with the token), and the node gets the server and CA from the service instead.
        "usage-bootstrap-authentication": "true",
        "auth-extra-groups": group,
      },
      labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [NODE_ID_LABEL]: options.nodeId, [POOL_LABEL]: options.pool },
    },
  };
}

/** A fresh `[id, secret]` pair. */
export function newBootstrapToken(): [string, string] {
  return [randomString(6), randomString(16)];
}

function splitToken(token: string): [string, string] {
  const match = BOOTSTRAP_TOKEN_PATTERN.exec(token);
  // The message never echoes the token: it is a credential.
  if (!match) throw new RangeError("token is not a bootstrap token ([a-z0-9]{6}.[a-z0-9]{16})");
  return [match[1]!, match[2]!];
}

/** Whole seconds, rounded down: the token never outlives what the caller asked for. */
function rfc3339(at: Date): string {
  const ms = at.getTime();
  if (!Number.isFinite(ms)) throw new RangeError("expiresAt is not a valid date");
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(/\.000Z$/, "Z");
}

/** Uniform over [a-z0-9]: randomInt rejects biased draws, unlike `byte % 36`. */
function randomString(length: number): string {
  let out = "";
  for (let i = 0; i < length; i++) out += ALPHABET[randomInt(ALPHABET.length)];
  return out;
}
