/** Maps the use cases' typed errors to problem responses: one table, so every route answers a failure the same way. */
import { ApprovalError } from "../../orchestrations/use-cases/approval.js";
import { OperatorError } from "../../orchestrations/use-cases/operator.js";
import { EnrolError, type EnrolFailure } from "../../orchestrations/use-cases/enrol.js";
import { RegistryError } from "../../orchestrations/clients/registry/registry.js";
import { PoolRowTooLarge } from "../../orchestrations/clients/registry/pools.js";
import { NotConfiguredError } from "../../orchestrations/settings.js";
import { ProblemError } from "./problem.js";

const ENROL: Record<EnrolFailure, [number, string]> = {
  "token-unknown": [403, "The enrolment token is not valid"],
  "token-expired": [403, "The enrolment token has expired"],
  "token-revoked": [403, "The enrolment token was revoked"],
  "token-exhausted": [403, "The enrolment token has already been used up"],
  "pool-missing": [409, "The token's pool no longer exists"],
  "clone-rejected": [409, "This machine is already enrolled with another key"],
  "clone-replace-pending": [409, "The previous enrolment of this machine is being stopped"],
  "clone-claim-pending": [409, "Another claim on this machine's identity is waiting for an admin"],
  "saga-finishing": [409, "The node's previous run is still finishing"],
};

const REGISTRY: Record<RegistryError["code"], [number, string, string]> = {
  PoolExists: [409, "pool-exists", "A pool with this name already exists"],
  PoolNotFound: [404, "not-found", "No such pool"],
  TokenNotFound: [404, "not-found", "No such token"],
  NodeNotFound: [404, "not-found", "No such node"],
  NodeExists: [409, "conflict", "The node exists already"],
  KeyInUse: [409, "key-in-use", "This public key is bound to another node"],
  FingerprintTaken: [409, "conflict", "Another node owns this machine's identity"],
  NonceUsed: [401, "signature-replayed", "The request was already received"],
  Conflict: [409, "conflict", "The object changed or is in the wrong state for this operation"],
  TooManyRetries: [503, "busy", "The object is too contended right now; retry"],
};

export function toProblemError(error: unknown): ProblemError | undefined {
  if (error instanceof ProblemError) return error;
  if (error instanceof EnrolError) {
    const [status, title] = ENROL[error.code];
    const retry: Record<string, string> = error.retryAfterSeconds !== undefined ? { "retry-after": String(error.retryAfterSeconds) } : {};
    return new ProblemError(status, error.code, title, { detail: error.message }, retry);
  }
  if (error instanceof RegistryError) {
    const [status, slug, title] = REGISTRY[error.code];
    return new ProblemError(status, slug, title, { detail: error.message }, status === 429 || status === 503 ? { "retry-after": "5" } : {});
  }
  // The pool routes refuse such a spec first (pool-spec-budget.ts); this is the registry's own refusal, named the same way.
  if (error instanceof PoolRowTooLarge) {
    return new ProblemError(422, "validation-failed", "The request body is not valid", {
      errors: error.fields.map((f) => ({ path: `/${f.name}`, message: `too long to store: ${f.chars} characters as JSON` })),
    });
  }
  if (error instanceof NotConfiguredError) return new ProblemError(503, "not-configured", "The service is not fully configured", { detail: error.message });
  if (error instanceof ApprovalError) {
    return new ProblemError(
      error.code === "node-not-found" ? 404 : 409,
      error.code === "node-not-found" ? "not-found" : "conflict",
      error.code === "node-not-found" ? "No such node" : "The node is not awaiting approval",
      { detail: error.message },
    );
  }
  if (error instanceof OperatorError) {
    if (error.code === "node-not-found") return new ProblemError(404, "not-found", "No such node", { detail: error.message });
    if (error.code === "still-running")
      return new ProblemError(409, "conflict", "The node's previous run is still finishing", { detail: error.message }, { "retry-after": "5" });
    return new ProblemError(409, "conflict", "The node is in the wrong state for this operation", { detail: error.message });
  }
  return undefined;
}
