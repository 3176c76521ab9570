/**
 * fetchSecret: a one-time secret (the bootstrap kubeconfig) taken over the node API and written 0600 to its path. The
 * value goes from `take` straight into the file: never into a log, an error, the result or the manifest. A rerun
 * after a successful write does not take again (the service deletes the secret on the first read).
 */
import * as path from "node:path";
import type { FetchSecretParams } from "../../../contract/step-params.js";
import { lstatIfExists, sha256File, writeFileAtomic } from "../fs-atomic.js";
import { keyOf } from "../manifest.js";
import { resolveHostPath } from "../paths.js";
import { SecretUnavailableError } from "../step-errors.js";
import type { Executor } from "./context.js";
import { assertNotDirectory, capturePrior, ensureDirectory, parseMode, refreshesFor } from "./host-changes.js";

export const fetchSecret: Executor<FetchSecretParams> = async (params, ctx) => {
  const { root, secrets } = ctx.deps;
  const mode = parseMode(params.mode ?? "0600");
  const target = await resolveHostPath(root, params.path, { write: true });
  await assertNotDirectory(target.fsPath, target.hostPath);
  const key = keyOf({ type: "file", path: target.hostPath, prior: { state: "absent" } });
  const recorded = ctx.manifest.find("file", key);
  const stats = await lstatIfExists(target.fsPath);
  // In place when this agent recorded the path and the file there is no longer the prior one.
  if (recorded && stats?.isFile() && stats.size > 0 && (stats.mode & 0o7777) === mode) {
    const prior = recorded.prior;
    const stillPrior = prior.state === "file" && (await sha256File(target.fsPath)) === prior.blob;
    if (!stillPrior) return { written: false, path: params.path };
  }
  await ensureDirectory(ctx, path.posix.dirname(target.hostPath));
  const final = await resolveHostPath(root, params.path, { write: true });
  if (!recorded) {
    const prior = await capturePrior(ctx.manifest, final.fsPath);
    await ctx.manifest.record(ctx.stepId, ...refreshesFor(final.hostPath), { type: "file", path: final.hostPath, prior });
  }
  let value: string;
  try {
    value = await secrets.take(params.secretRef);
  } catch (e) {
    // The cause may quote the response body; keep only the reference and the error's own message.
    throw new SecretUnavailableError(`secret ${params.secretRef} could not be fetched: ${(e as Error).message}`);
  }
  await writeFileAtomic(final.fsPath, value, { mode });
  ctx.deps.log(`secret ${params.secretRef} written to ${params.path} (${Buffer.byteLength(value)} bytes, mode ${params.mode ?? "0600"})`);
  return { written: true, path: params.path };
};
