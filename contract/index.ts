/**
 * The wire contract shared by the service and the node agent. No Azure or HTTP-framework imports: the agent bundles
 * this folder, so it stays at zod, canonicalize, http-message-signatures and node:crypto. Modules import zod as
 * `import * as z`, which lets esbuild drop zod's locales (about 440 kB down to under 100 kB in the agent bundle).
 */
export * from "./errors.js";
export { assertJsonObject, assertJsonValue, JsonObjectSchema, type JsonObject, type JsonPrimitive, type JsonValue } from "./json.js";
export { exportPublicKey, importPublicKey, KeyIdSchema, keyIdOf, PublicKeySchema } from "./keys.js";
export {
  canonicalSigningInput,
  sealMessage,
  signCanonical,
  SIGNATURE_ALG,
  SignatureBlockSchema,
  SIGNING_DOMAINS,
  verifyCanonical,
  verifySealedMessage,
  type SealOptions,
  type SignatureBlock,
  type SignCanonicalOptions,
  type Signed,
  type VerifyCanonicalOptions,
  type VerifySealedOptions,
} from "./canonical-signing.js";
export { findSecrets, isSecretFieldName, secretKindOf, type SecretFinding, type SecretKind } from "./secrets.js";
export {
  buildStepEnvelope,
  DEFAULT_ENVELOPE_SKEW_SECONDS,
  MAX_ENVELOPE_SKEW_SECONDS,
  STEP_ENVELOPE_VERSION,
  STEP_KINDS,
  StepEnvelopeSchema,
  stepEnvelopeSchemaFor,
  StepKindSchema,
  verifyStepEnvelope,
  type ServiceSigner,
  type StepEnvelope,
  type StepEnvelopeInput,
  type StepKind,
  type StepParamsSchemas,
  type VerifyStepEnvelopeOptions,
} from "./step-envelope.js";
export {
  buildStepResult,
  ManifestDigestSchema,
  parseUnverifiedStepResult,
  STEP_RESULT_VERSION,
  StepErrorSchema,
  StepResultSchema,
  verifyStepResult,
  type NodeSigner,
  type StepError,
  type StepOutcome,
  type StepResult,
  type StepResultInput,
  type VerifyStepResultOptions,
} from "./step-result.js";
export { contentDigest, type Body } from "./content-digest.js";
export type { NonceClaim, NonceStore } from "./nonce-store.js";
export {
  DEFAULT_NODE_REQUEST_SKEW_SECONDS,
  NODE_SIGNATURE_ALG,
  NODE_SIGNATURE_LABEL,
  signNodeRequest,
  verifyNodeRequest,
  type HeaderSource,
  type NodeRequest,
  type NodeRequestSignatureHeaders,
  type SignNodeRequestOptions,
  type VerifiedNodeRequest,
  type VerifyNodeRequestOptions,
} from "./node-request.js";
export { NodeFactsSchema, type NodeFacts } from "./node-facts.js";
export { MailboxCredentialsSchema, type MailboxCredentials } from "./mailbox-credentials.js";
export * from "./step-params.js";
