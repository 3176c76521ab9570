/**
 * `reset` (CLI command and step kind): undo, newest first, exactly what the manifest records. Each undone change is
 * dropped from the manifest as soon as it is undone, so a crashed reset resumes where it stopped; a change that
 * cannot be undone stays recorded (and reported) for the next reset. Content the agent did not record (a file
 * someone added to a directory the agent created) is never removed: it is left, reported in `left`, and its
 * directory with it. With nothing left, the agent's manifest, prior blobs and download cache go too.
 */
import { describeChange, Manifest } from "./manifest.js";
import { messageOf } from "./message-of.js";
import type { ResetAll, ResetReport } from "./ports.js";
import { releaseWorkloads } from "./release-workloads.js";
import { undoChange } from "./undo.js";

export const resetAll: ResetAll = async (deps) => {
  const manifest = await Manifest.open(deps.root);
  const report: ResetReport = { undone: [], failed: [], left: [], manifestDigest: "" };
  await releaseWorkloads({ root: deps.root, host: deps.host, manifest, log: deps.log });
  for (const change of [...manifest.changes].reverse()) {
    const what = describeChange(change);
    const leave = (path: string, why: string) => {
      report.left.push({ stepId: change.stepId, change: what, path, why });
      deps.log(`reset: left ${path} in place (${what}, step ${change.stepId}): ${why}`);
    };
    try {
      await undoChange({ root: deps.root, host: deps.host, manifest, leave }, change);
      await manifest.remove(change);
      report.undone.push({ stepId: change.stepId, change: what });
    } catch (e) {
      const error = messageOf(e);
      report.failed.push({ stepId: change.stepId, change: what, error });
      deps.log(`reset: could not undo ${what} (step ${change.stepId}): ${error}`);
    }
  }
  await manifest.removeStateIfEmpty();
  report.manifestDigest = manifest.digest();
  deps.log(
    `reset: undid ${report.undone.length} change(s)${report.failed.length ? `, ${report.failed.length} left recorded` : ""}${report.left.length ? `, ${report.left.length} path(s) left in place` : ""}`,
  );
  return report;
};
