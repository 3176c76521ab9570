/**
 * Node requests (and enrolment, which proves possession of the key it registers) are signed with the node's Ed25519 key (RFC 9421, profile in contract/node-request.ts) and verified
 * against the key registered at enrolment: the key id names the node, `created` must be within the skew window, and
 * each nonce is accepted once (the registry records it), so neither an old nor a fresh capture can be replayed.
 */
import type { HttpRequest } from "@azure/functions";
import { ContractError } from "../../contract/errors.js";
import { importPublicKey, keyIdOf } from "../../contract/keys.js";
import { verifyNodeRequest, type VerifyNodeRequestOptions } from "../../contract/node-request.js";
import type { NonceStore } from "../../contract/nonce-store.js";
import type { NodeRecord } from "../../orchestrations/clients/registry/model.js";
import { ProblemError } from "./problem.js";
import type { Services } from "../../orchestrations/services.js";

/** Contract error code → [problem type, title]. */
const PROBLEMS: Record<string, [string, string]> = {
  missing_signature_headers: ["signature-missing", "The request is not signed"],
  malformed_signature: ["signature-malformed", "The request signature is malformed"],
  unknown_key: ["signature-unknown-key", "The signing key is not registered"],
  content_digest_mismatch: ["signature-digest-mismatch", "The body does not match its signed digest"],
  bad_signature: ["signature-invalid", "The request signature does not verify"],
  signature_too_old: ["signature-stale", "The request signature is too old"],
  signature_in_future: ["signature-future", "The request signature is from the future; check the node's clock"],
  replayed_request: ["signature-replayed", "The request was already received"],
};

export async function authenticateNode({ registry, now }: Pick<Services, "registry" | "now">, request: HttpRequest, body: Uint8Array): Promise<NodeRecord> {
  let node: NodeRecord | undefined;
  await verified(request, body, now(), {
    lookupPublicKey: async (keyId) => {
      node = await registry.nodes.getByKey(keyId);
      return node ? importPublicKey(node.publicKey) : undefined;
    },
    nonceStore: { claim: (entry) => registry.nonces.claim(entry) },
  });
  if (!node) throw new ProblemError(401, "signature-unknown-key", "The signing key is not registered");
  return node;
}

/** Statuses whose key no longer acts for the node: it failed (or was rejected) or was offboarded. */
const RETIRED: ReadonlySet<NodeRecord["status"]> = new Set(["Failed", "Offboarded"]);

/**
 * A Failed node whose compensation still holds its mailbox: the compensation takes the node (Failed) before it asks
 * the agent to reset, and removes the mailbox last.
 */
export function stillCompensating(node: NodeRecord): boolean {
  return node.status === "Failed" && node.createdObjects.some((r) => r.startsWith("mailbox:"));
}

/**
 * Refuses a retired node. 409 rather than 403: the key is the node's, its state is what forbids the call, and the
 * agent answers a 409 by reading its status (which stays open to it) and stopping.
 */
export function refuseRetired(node: NodeRecord): void {
  if (!RETIRED.has(node.status)) return;
  throw new ProblemError(409, "node-retired", "This node is retired; its key no longer acts for it", {
    detail: `node ${node.nodeId} is ${node.status}${node.lastError ? ` (${node.lastError.code})` : ""}; it must enrol again`,
  });
}

/**
 * Proof of possession at enrolment: the request is signed (same profile) by the private half of the key it asks the
 * service to register, so a public key and public machine facts alone earn nothing. Nonces are kept as for node
 * requests: a captured enrolment cannot be replayed inside the skew window either.
 */
export async function proveKeyPossession(
  { registry, now }: Pick<Services, "registry" | "now">,
  request: HttpRequest,
  body: Uint8Array,
  publicKey: string,
  /** Where the nonce goes instead of the registry's nonce table (enrolment records it itself, see use-cases/enrol.ts). */
  nonceStore: NonceStore = { claim: (entry) => registry.nonces.claim(entry) },
): Promise<void> {
  const key = importPublicKey(publicKey);
  const keyId = keyIdOf(publicKey);
  await verified(request, body, now(), { lookupPublicKey: (id) => (id === keyId ? key : undefined), nonceStore });
}

async function verified(
  request: HttpRequest,
  body: Uint8Array,
  now: Date,
  options: Pick<VerifyNodeRequestOptions, "lookupPublicKey" | "nonceStore">,
): Promise<void> {
  try {
    await verifyNodeRequest({ method: request.method, url: request.url, headers: request.headers, body }, { now, ...options });
  } catch (error) {
    const known = error instanceof ContractError ? PROBLEMS[error.code] : undefined;
    if (known)
      throw new ProblemError(401, known[0], known[1], { detail: (error as Error).message }, { "www-authenticate": 'Signature realm="flexnode-node-api"' });
    throw error;
  }
}
