/**
 * StepResult: the agent's signed report of one step attempt, sent to the service's results queue. The agent builds
 * and signs it with the node key; the service verifies it against the key registered for that node at enrolment.
 */
import type { KeyObject } from "node:crypto";
import * as z from "zod";
import { SIGNING_DOMAINS, SignatureBlockSchema, sealMessage, verifySealedMessage } from "./canonical-signing.js";
import { SecretInMessageError, WrongNodeError } from "./errors.js";
import { AttemptSchema, IdentifierSchema, isoOf, parseWith, TraceparentSchema, UtcTimestampSchema } from "./fields.js";
import { assertJsonObject, JsonObjectSchema, type JsonObject } from "./json.js";
import { assertEd25519 } from "./keys.js";
import { findSecrets } from "./secrets.js";
import { checkVersion, type VersionPolicy } from "./versioning.js";

export const STEP_RESULT_VERSION = 1;

const RESULT_VERSIONS: VersionPolicy = {
  messageType: "StepResult",
  supported: [STEP_RESULT_VERSION],
  reader: "this flexnode service",
  whenNewer: "The node runs a newer flexnode-agent than the service supports; upgrade the flexnode service or install the agent release that matches it.",
  whenOlder: "The node runs an outdated flexnode-agent; upgrade flexnode-agent on that node.",
};

/** Digest of the node's applied-state manifest after the step, so the service can tell what `reset` would undo. */
export const ManifestDigestSchema = z.string().regex(/^sha256:[0-9a-f]{64}$/, 'must be "sha256:" followed by 64 lowercase hex digits');

export const StepErrorSchema = z.strictObject({
  code: z.string().regex(/^[A-Za-z][A-Za-z0-9_.:-]{0,127}$/, "must be a short machine-readable code"),
  message: z.string().min(1).max(4096),
  retryable: z.boolean(),
});
export type StepError = z.infer<typeof StepErrorSchema>;

const commonShape = {
  version: z.literal(STEP_RESULT_VERSION),
  nodeId: IdentifierSchema,
  sagaId: IdentifierSchema,
  stepId: IdentifierSchema,
  attempt: AttemptSchema,
  output: JsonObjectSchema.optional(),
  startedAt: UtcTimestampSchema,
  finishedAt: UtcTimestampSchema,
  manifestDigest: ManifestDigestSchema,
  /** The envelope's traceparent, echoed so the service can put the node's step into the onboarding's trace. */
  traceparent: TraceparentSchema.optional(),
};

function ordered(r: { startedAt: string; finishedAt: string }, ctx: z.RefinementCtx): void {
  if (Date.parse(r.finishedAt) < Date.parse(r.startedAt)) ctx.addIssue({ code: "custom", path: ["finishedAt"], message: "must not be before startedAt" });
}

const succeededShape = { ...commonShape, outcome: z.literal("succeeded") };
const failedShape = { ...commonShape, outcome: z.literal("failed"), error: StepErrorSchema };

// Two strict variants: `error` is required when failed and, being an unknown key there, refused when succeeded.
export const StepResultSchema = z
  .discriminatedUnion("outcome", [
    z.strictObject({ ...succeededShape, signature: SignatureBlockSchema }),
    z.strictObject({ ...failedShape, signature: SignatureBlockSchema }),
  ])
  .superRefine(ordered);
export type StepResult = z.infer<typeof StepResultSchema>;
export type StepOutcome = StepResult["outcome"];

const UnsignedStepResultSchema = z.discriminatedUnion("outcome", [z.strictObject(succeededShape), z.strictObject(failedShape)]).superRefine(ordered);

interface StepResultCommonInput {
  nodeId: string;
  sagaId: string;
  stepId: string;
  attempt: number;
  output?: JsonObject;
  startedAt: Date;
  finishedAt: Date;
  manifestDigest: string;
  traceparent?: string;
}

export type StepResultInput = StepResultCommonInput & ({ outcome: "succeeded"; error?: never } | { outcome: "failed"; error: StepError });

export interface NodeSigner {
  /** The node's Ed25519 identity key. */
  privateKey: KeyObject;
}

/** Agent side: validate, refuse secret-shaped output or error text, sign with the node key. */
export function buildStepResult(input: StepResultInput, { privateKey }: NodeSigner): StepResult {
  assertEd25519(privateKey, "private", "node signing key");
  if (input.output !== undefined) assertJsonObject(input.output);
  const candidate: Record<string, unknown> = {
    version: STEP_RESULT_VERSION,
    nodeId: input.nodeId,
    sagaId: input.sagaId,
    stepId: input.stepId,
    attempt: input.attempt,
    outcome: input.outcome,
    startedAt: isoOf(input.startedAt, "startedAt"),
    finishedAt: isoOf(input.finishedAt, "finishedAt"),
    manifestDigest: input.manifestDigest,
  };
  // Absent, not undefined: undefined has no JSON form and would be refused by the signer.
  if (input.output !== undefined) candidate["output"] = input.output;
  if (input.error !== undefined) candidate["error"] = input.error;
  if (input.traceparent !== undefined) candidate["traceparent"] = input.traceparent;
  const findings = findSecrets(candidate);
  if (findings.length > 0) throw new SecretInMessageError("StepResult", findings);
  const unsigned = parseWith(UnsignedStepResultSchema, candidate, "StepResult");
  return sealMessage({ domain: SIGNING_DOMAINS.stepResult, message: unsigned, privateKey });
}

/**
 * Service side, step one: version and schema only, to learn which node the result claims to come from so its
 * registered key can be looked up. Nothing in it is trustworthy until verifyStepResult succeeds.
 */
export function parseUnverifiedStepResult(raw: unknown): StepResult {
  checkVersion(raw, RESULT_VERSIONS);
  return parseWith(StepResultSchema, raw, "StepResult");
}

export interface VerifyStepResultOptions {
  /** The node the caller expects the result from. */
  nodeId: string;
  /** That node's public key as registered at enrolment. */
  nodePublicKey: KeyObject;
}

/**
 * Service side: version, schema, sender, signature. The node is checked before the signature because the key the
 * caller holds belongs to `nodeId`; a result claiming another node is misrouted, whoever signed it.
 */
export function verifyStepResult(raw: unknown, { nodeId, nodePublicKey }: VerifyStepResultOptions): StepResult {
  assertEd25519(nodePublicKey, "any", "node public key");
  const result = parseUnverifiedStepResult(raw);
  if (result.nodeId !== nodeId) throw new WrongNodeError(nodeId, result.nodeId);
  verifySealedMessage({ domain: SIGNING_DOMAINS.stepResult, message: result, publicKey: nodePublicKey });
  return result;
}
