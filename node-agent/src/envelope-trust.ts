/**
 * Which refused envelopes the agent may answer. A signed result is the node's word about a step; it is given only for
 * a message the service itself sent to this node: one whose signature verifies against the service key pinned at
 * enrolment, addressed to this node, and not expired. Anything else (unsigned, forged, altered, signed with another
 * key, unparseable, another node's envelope, an expired one) is not answered at all, since anyone able to send to the
 * node's queue could otherwise make the node fail a step it ran (or never saw) with its own signature.
 *
 * The contract verifies in the order version → schema → signature → node → validity, so a newer version or an unknown
 * kind is refused before the signature is looked at. Here the signature is checked on the raw message instead, so a
 * service-signed message the agent cannot run (newer version, unknown kind, bad params) is still answered as failed.
 */
import type { KeyObject } from "node:crypto";
import { SIGNING_DOMAINS, SignatureBlockSchema, verifySealedMessage } from "../../contract/canonical-signing.js";
import { BadSignatureError, ContractError, EnvelopeExpiredError, EnvelopeNotYetValidError, WrongNodeError } from "../../contract/errors.js";
import type { JsonObject } from "../../contract/json.js";

export interface TrustOptions {
  servicePublicKey: KeyObject;
  nodeId: string;
  now: Date;
  /** The same skew the envelope was verified with. */
  skewSeconds: number;
}

/**
 * For an envelope `verifyStepEnvelope` refused with `refusal`: undefined when the message is the service's own,
 * addressed to this node and unexpired (answer it with a signed failed result), else the reason not to answer it,
 * which is the code of the first check that failed: the contract's own code for a message that carries no signature
 * block at all (`unsupported_version`, `schema_invalid`), then `bad_signature`, `wrong_node`, `envelope_expired`.
 */
export function whyUnanswerable(raw: unknown, refusal: ContractError, o: TrustOptions): ContractError | undefined {
  // The contract got as far as the signature: its verdict stands.
  if (refusal instanceof BadSignatureError || refusal instanceof WrongNodeError || refusal instanceof EnvelopeExpiredError) return refusal;
  // Signature and node verified; the node's clock is behind. Answered (retryable), so the saga names the cause.
  // envelope-handling.ts answers this case (clock_skew) before asking here; kept so this verdict holds on its own.
  if (refusal instanceof EnvelopeNotYetValidError) return undefined;

  const message = plainJsonCopy(raw);
  if (message === undefined || !SignatureBlockSchema.safeParse(message["signature"]).success) return refusal;
  try {
    verifySealedMessage({ domain: SIGNING_DOMAINS.stepEnvelope, message: message as JsonObject & { signature: never }, publicKey: o.servicePublicKey });
  } catch (error) {
    if (error instanceof ContractError)
      return error instanceof BadSignatureError ? error : new BadSignatureError(`the message cannot be verified: ${error.message}`);
    throw error;
  }
  // Service-signed, but not parseable as a v1 envelope: check the claims the signature vouches for as far as they read.
  const nodeId = message["nodeId"];
  if (nodeId !== o.nodeId) return new WrongNodeError(o.nodeId, typeof nodeId === "string" ? nodeId : (JSON.stringify(nodeId) ?? "nothing"));
  const expiresAt = typeof message["expiresAt"] === "string" ? Date.parse(message["expiresAt"]) : Number.NaN;
  if (!Number.isNaN(expiresAt) && o.now.getTime() > expiresAt + o.skewSeconds * 1000) {
    return new EnvelopeExpiredError(`the message expired at ${new Date(expiresAt).toISOString()}; now is ${o.now.toISOString()}`);
  }
  return undefined;
}

/** The message as plain JSON (what was signed is its canonical form), or undefined when it is not a JSON object. */
function plainJsonCopy(raw: unknown): Record<string, unknown> | undefined {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw) || Buffer.isBuffer(raw)) return undefined;
  try {
    const copy: unknown = JSON.parse(JSON.stringify(raw));
    return typeof copy === "object" && copy !== null && !Array.isArray(copy) ? (copy as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
