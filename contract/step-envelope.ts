/**
 * StepEnvelope: one signed instruction from the onboarding saga to a node's agent, sent through the node's mailbox.
 * The service builds and signs it; the agent parses and verifies it before running anything.
 */
import type { KeyObject } from "node:crypto";
import * as z from "zod";
import { SIGNING_DOMAINS, SignatureBlockSchema, sealMessage, verifySealedMessage } from "./canonical-signing.js";
import { EnvelopeExpiredError, EnvelopeNotYetValidError, InvalidArgumentError, SecretInMessageError, WrongNodeError } from "./errors.js";
import { AttemptSchema, IdentifierSchema, isoOf, parseWith, TraceparentSchema, UtcTimestampSchema } from "./fields.js";
import { assertJsonObject, JsonObjectSchema, type JsonObject } from "./json.js";
import { assertEd25519 } from "./keys.js";
import { findSecrets } from "./secrets.js";
import { checkVersion, type VersionPolicy } from "./versioning.js";

export const STEP_ENVELOPE_VERSION = 1;

/** The agent's fixed executors. Adding one is a contract change: older agents must refuse what they cannot run. */
export const STEP_KINDS = [
  "preflight",
  "writeFiles",
  "sysctl",
  "kernelModules",
  "fetchArtifact",
  "installSysext",
  "systemdUnits",
  "waitFor",
  "fetchSecret",
  "reset",
] as const;
export const StepKindSchema = z.enum(STEP_KINDS);
export type StepKind = z.infer<typeof StepKindSchema>;

const ENVELOPE_VERSIONS: VersionPolicy = {
  messageType: "StepEnvelope",
  supported: [STEP_ENVELOPE_VERSION],
  reader: "this flexnode-agent",
  whenNewer: "Upgrade flexnode-agent on this node to a release that supports this envelope version, then retry the step.",
  whenOlder: "The service sending it is out of date; upgrade the flexnode service.",
};

const unsignedShape = {
  version: z.literal(STEP_ENVELOPE_VERSION),
  nodeId: IdentifierSchema,
  sagaId: IdentifierSchema,
  stepId: IdentifierSchema,
  attempt: AttemptSchema,
  kind: StepKindSchema,
  params: JsonObjectSchema,
  issuedAt: UtcTimestampSchema,
  expiresAt: UtcTimestampSchema,
  /** The onboarding's trace context; the agent echoes it in its result. Covered by the signature like every field. */
  traceparent: TraceparentSchema.optional(),
};

function validityWindow(e: { issuedAt: string; expiresAt: string }, ctx: z.RefinementCtx): void {
  if (Date.parse(e.expiresAt) <= Date.parse(e.issuedAt)) ctx.addIssue({ code: "custom", path: ["expiresAt"], message: "must be after issuedAt" });
}

/** Strict: an unknown top-level field is refused, so a field a newer service relies on is never silently ignored. */
export const StepEnvelopeSchema = z.strictObject({ ...unsignedShape, signature: SignatureBlockSchema }).superRefine(validityWindow);
export type StepEnvelope = z.infer<typeof StepEnvelopeSchema>;

const UnsignedStepEnvelopeSchema = z.strictObject(unsignedShape).superRefine(validityWindow);

/**
 * The envelope schema narrowed to one kind with its own params schema, for the agent's per-kind executors, e.g.
 * `z.discriminatedUnion("kind", [stepEnvelopeSchemaFor("sysctl", SysctlParams), ...])`.
 */
export function stepEnvelopeSchemaFor<K extends StepKind, P extends z.ZodType<JsonObject>>(kind: K, params: P) {
  return z.strictObject({ ...unsignedShape, kind: z.literal(kind), params, signature: SignatureBlockSchema }).superRefine(validityWindow);
}

/** Per-kind params schemas, checked after the signature so a signed envelope with bad params is reported as such. */
export type StepParamsSchemas = { readonly [K in StepKind]?: z.ZodType<JsonObject> };

export interface StepEnvelopeInput {
  nodeId: string;
  sagaId: string;
  stepId: string;
  attempt: number;
  kind: StepKind;
  params: JsonObject;
  issuedAt: Date;
  expiresAt: Date;
  traceparent?: string;
}

export interface ServiceSigner {
  /** The service's Ed25519 signing key. */
  privateKey: KeyObject;
}

/** Service side: validate, refuse secret-shaped params, sign. */
export function buildStepEnvelope(input: StepEnvelopeInput, { privateKey }: ServiceSigner): StepEnvelope {
  assertEd25519(privateKey, "private", "service signing key");
  assertJsonObject(input.params);
  const candidate: Record<string, unknown> = {
    version: STEP_ENVELOPE_VERSION,
    nodeId: input.nodeId,
    sagaId: input.sagaId,
    stepId: input.stepId,
    attempt: input.attempt,
    kind: input.kind,
    params: input.params,
    issuedAt: isoOf(input.issuedAt, "issuedAt"),
    expiresAt: isoOf(input.expiresAt, "expiresAt"),
  };
  // Absent, not undefined: undefined has no JSON form and would be refused by the signer.
  if (input.traceparent !== undefined) candidate["traceparent"] = input.traceparent;
  // The whole message, not just params: an id is as capable of carrying a pasted token as a param is.
  const findings = findSecrets(candidate);
  if (findings.length > 0) throw new SecretInMessageError("StepEnvelope", findings);
  const unsigned = parseWith(UnsignedStepEnvelopeSchema, candidate, "StepEnvelope");
  return sealMessage({ domain: SIGNING_DOMAINS.stepEnvelope, message: unsigned, privateKey });
}

/** Clock skew tolerated between service and node when checking issuedAt/expiresAt. */
export const DEFAULT_ENVELOPE_SKEW_SECONDS = 60;
export const MAX_ENVELOPE_SKEW_SECONDS = 300;

export interface VerifyStepEnvelopeOptions {
  /** The service's public key the agent received at enrolment. */
  servicePublicKey: KeyObject;
  /** This node's id: envelopes for any other node are refused. */
  nodeId: string;
  now: Date;
  /** Default 60, at most 300. */
  maxSkewSeconds?: number;
  paramsSchemas?: StepParamsSchemas;
}

/**
 * Agent side. Order matters: version first (so a newer format gets "upgrade the agent", not a schema complaint),
 * then the strict schema, then the signature, and only then the claims the signature vouches for.
 */
export function verifyStepEnvelope(raw: unknown, options: VerifyStepEnvelopeOptions): StepEnvelope {
  const { servicePublicKey, nodeId, now, paramsSchemas } = options;
  const skew = options.maxSkewSeconds ?? DEFAULT_ENVELOPE_SKEW_SECONDS;
  if (!Number.isInteger(skew) || skew < 0 || skew > MAX_ENVELOPE_SKEW_SECONDS) {
    throw new InvalidArgumentError(`maxSkewSeconds must be an integer from 0 to ${MAX_ENVELOPE_SKEW_SECONDS}`);
  }
  const nowMs = Date.parse(isoOf(now, "now"));
  assertEd25519(servicePublicKey, "any", "service public key");

  checkVersion(raw, ENVELOPE_VERSIONS);
  const envelope = parseWith(StepEnvelopeSchema, raw, "StepEnvelope");
  // Verify what was parsed, i.e. exactly what the caller will act on.
  verifySealedMessage({ domain: SIGNING_DOMAINS.stepEnvelope, message: envelope, publicKey: servicePublicKey });

  if (envelope.nodeId !== nodeId) throw new WrongNodeError(nodeId, envelope.nodeId);
  const skewMs = skew * 1000;
  if (nowMs > Date.parse(envelope.expiresAt) + skewMs) {
    throw new EnvelopeExpiredError(
      `StepEnvelope ${envelope.stepId} (attempt ${envelope.attempt}) expired at ${envelope.expiresAt}; now is ${now.toISOString()}`,
    );
  }
  if (nowMs < Date.parse(envelope.issuedAt) - skewMs) {
    throw new EnvelopeNotYetValidError(
      `StepEnvelope ${envelope.stepId} was issued at ${envelope.issuedAt}, after now (${now.toISOString()}) by more than ${skew}s: check this node's clock`,
    );
  }

  const paramsSchema = paramsSchemas?.[envelope.kind];
  if (paramsSchema !== undefined) {
    return { ...envelope, params: parseWith(paramsSchema, envelope.params, "StepEnvelope", "/params") };
  }
  return envelope;
}
