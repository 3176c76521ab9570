/**
 * The preflight step: the same checks as `flexnode-agent preflight`; any failed check fails the step. Unlike the CLI,
 * the step has a time the service vouches for (its verified envelope's issuedAt), so its clock check is measured.
 */
import type { PreflightParams } from "../../../contract/step-params.js";
import { runPreflight } from "../preflight.js";
import { PreflightFailedError } from "../step-errors.js";
import type { Executor } from "./context.js";

export const preflight: Executor<PreflightParams> = async (params, ctx) => {
  const { root, host, ca, now } = ctx.deps;
  const report = await runPreflight({ root, host, now, clockReference: ctx.clockReference, ...(ca ? { ca } : {}), ...params });
  const checks = report.checks.map((c) => ({ name: c.name, status: c.status, detail: c.detail }));
  if (!report.ok) {
    const failed = report.checks.filter((c) => c.status === "fail").map((c) => `${c.name}: ${c.detail}`);
    throw new PreflightFailedError(`preflight failed: ${failed.join("; ")}`);
  }
  return { checks };
};
