/**
 * `reset` (CLI command and step kind): undo, newest first, exactly what the manifest records. Each undone change is
 * dropped from the manifest as soon as it is undone, so a crashed reset resumes where it stopped; a change that
 * cannot be undone stays recorded (and reported) for the next reset. With nothing left, the agent's manifest, prior
 * blobs and download cache go too.
 */
import { describeChange, Manifest } from "./manifest.js";
import type { ResetAll, ResetReport } from "./ports.js";
import { undoChange } from "./undo.js";

export const resetAll: ResetAll = async (deps) => {
  const manifest = await Manifest.open(deps.root);
  const report: ResetReport = { undone: [], failed: [], manifestDigest: "" };
  for (const change of [...manifest.changes].reverse()) {
    const what = describeChange(change);
    try {
      await undoChange({ root: deps.root, host: deps.host, manifest }, change);
      await manifest.remove(change);
      report.undone.push({ stepId: change.stepId, change: what });
    } catch (e) {
      const error = e instanceof Error ? e.message : String(e);
      report.failed.push({ stepId: change.stepId, change: what, error });
      deps.log(`reset: could not undo ${what} (step ${change.stepId}): ${error}`);
    }
  }
  await manifest.removeStateIfEmpty();
  report.manifestDigest = manifest.digest();
  deps.log(`reset: undid ${report.undone.length} change(s)${report.failed.length ? `, ${report.failed.length} left recorded` : ""}`);
  return report;
};
