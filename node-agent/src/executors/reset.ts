/** The reset step (sent by the saga when it gives up): undo everything the manifest records. */
import type { ResetParams } from "../../../contract/step-params.js";
import { resetAll } from "../reset.js";
import { ResetIncompleteError } from "../step-errors.js";
import type { Executor } from "./context.js";

export const reset: Executor<ResetParams> = async (_params, ctx) => {
  const report = await resetAll(ctx.deps);
  if (report.failed.length > 0) {
    throw new ResetIncompleteError(
      `${report.failed.length} change(s) could not be undone and stay recorded: ${report.failed.map((f) => `${f.change}: ${f.error}`).join("; ")}`,
    );
  }
  // Only the recorded paths (named by the service's own plan) go into the result; what is in them stays in the node's log.
  return { undone: report.undone.length, ...(report.left.length > 0 ? { left: report.left.map((l) => l.path) } : {}) };
};
