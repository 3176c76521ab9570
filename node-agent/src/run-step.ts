/**
 * Runs one verified envelope's step: params checked against the kind's schema (so a bad plan changes nothing), the
 * executor run against the manifest, and every failure turned into a result with a stable code — never a throw.
 */
import type * as z from "zod";
import { ContractError } from "../../contract/errors.js";
import type { JsonObject } from "../../contract/json.js";
import type { StepError } from "../../contract/step-result.js";
import { StepParamsSchemas } from "../../contract/step-params.js";
import type { StepKind } from "../../contract/step-envelope.js";
import type { ExecutorContext } from "./executors/context.js";
import { fetchArtifact } from "./executors/fetch-artifact.js";
import { fetchSecret } from "./executors/fetch-secret.js";
import { installSysext } from "./executors/install-sysext.js";
import { kernelModules } from "./executors/kernel-modules.js";
import { preflight } from "./executors/preflight.js";
import { reset } from "./executors/reset.js";
import { sysctl } from "./executors/sysctl.js";
import { systemdUnits } from "./executors/systemd-units.js";
import { waitFor } from "./executors/wait-for.js";
import { writeFiles } from "./executors/write-files.js";
import { digestOf, Manifest, manifestDigestAt } from "./manifest.js";
import { messageOf } from "./message-of.js";
import type { RunStep, StepRunResult } from "./ports.js";
import { InvalidParamsError, StepFailure } from "./step-errors.js";

const MAX_MESSAGE = 4096;

function parse<S extends z.ZodType>(schema: S, kind: StepKind, params: JsonObject): z.output<S> {
  const result = schema.safeParse(params);
  if (result.success) return result.data;
  const issues = result.error.issues.slice(0, 5).map((i) => `/params/${i.path.map(String).join("/")}: ${i.message}`);
  throw new InvalidParamsError(`${kind} params are not valid: ${issues.join("; ")}`);
}

function dispatch(kind: StepKind, params: JsonObject, ctx: ExecutorContext): Promise<JsonObject> {
  const s = StepParamsSchemas;
  switch (kind) {
    case "preflight":
      return preflight(parse(s.preflight, kind, params), ctx);
    case "writeFiles":
      return writeFiles(parse(s.writeFiles, kind, params), ctx);
    case "sysctl":
      return sysctl(parse(s.sysctl, kind, params), ctx);
    case "kernelModules":
      return kernelModules(parse(s.kernelModules, kind, params), ctx);
    case "fetchArtifact":
      return fetchArtifact(parse(s.fetchArtifact, kind, params), ctx);
    case "installSysext":
      return installSysext(parse(s.installSysext, kind, params), ctx);
    case "systemdUnits":
      return systemdUnits(parse(s.systemdUnits, kind, params), ctx);
    case "waitFor":
      return waitFor(parse(s.waitFor, kind, params), ctx);
    case "fetchSecret":
      return fetchSecret(parse(s.fetchSecret, kind, params), ctx);
    case "reset":
      return reset(parse(s.reset, kind, params), ctx);
  }
}

const NOT_RETRYABLE_ERRNO = new Set(["EROFS", "EACCES", "EPERM", "ENOTDIR", "EISDIR", "ELOOP"]);

export function toStepError(e: unknown): StepError {
  const clip = (m: string) => (m.length > MAX_MESSAGE ? `${m.slice(0, MAX_MESSAGE - 1)}…` : m || "no message");
  if (e instanceof StepFailure) return { code: e.code, message: clip(e.message), retryable: e.retryable };
  if (e instanceof ContractError) return { code: e.code, message: clip(e.message), retryable: false };
  const errno =
    typeof e === "object" && e !== null && "code" in e && typeof (e as { code: unknown }).code === "string" ? (e as { code: string }).code : undefined;
  const message = messageOf(e);
  if (errno)
    return { code: errno === "EROFS" ? "read_only_filesystem" : "io_error", message: clip(`${errno}: ${message}`), retryable: !NOT_RETRYABLE_ERRNO.has(errno) };
  return { code: "internal", message: clip(message), retryable: false };
}

export const runStep: RunStep = async (envelope, deps) => {
  let result: { outcome: "succeeded"; output: JsonObject } | { outcome: "failed"; error: StepError };
  // The service's clock as the verified envelope carries it, next to this node's: the preflight step measures the skew
  // from these (the node comparing its clock with itself would prove nothing).
  const clockReference = { serviceTime: new Date(envelope.issuedAt), nodeTime: deps.now(), source: `step envelope ${envelope.stepId}'s issuedAt` };
  try {
    const manifest = await Manifest.open(deps.root);
    const output = await dispatch(envelope.kind, envelope.params, { stepId: envelope.stepId, deps, manifest, clockReference });
    result = { outcome: "succeeded", output };
  } catch (e) {
    result = { outcome: "failed", error: toStepError(e) };
  }
  let manifestDigest: string;
  try {
    manifestDigest = await manifestDigestAt(deps.root);
  } catch (e) {
    deps.log(`cannot read the manifest for its digest: ${(e as Error).message}`);
    manifestDigest = digestOf([]);
  }
  deps.log(
    `step ${envelope.stepId} (${envelope.kind}, attempt ${envelope.attempt}): ${result.outcome === "succeeded" ? "succeeded" : `failed ${result.error.code}: ${result.error.message}`}`,
  );
  return { ...result, manifestDigest } satisfies StepRunResult;
};
