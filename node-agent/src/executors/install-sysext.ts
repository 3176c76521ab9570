/**
 * installSysext: a pinned systemd-sysext image placed as <directory>/<name>.raw, then `systemd-sysext refresh` so its
 * /usr tree is merged now. The image file is recorded (with a refresh for undo) like any other file.
 */
import type { InstallSysextParams } from "../../../contract/step-params.js";
import { forgetDownload } from "../artifact-download.js";
import { HostCommandFailedError } from "../step-errors.js";
import type { Executor } from "./context.js";
import { download } from "./fetch-artifact.js";
import { fileMatches, placeFile } from "./host-changes.js";
import { resolveHostPath } from "../paths.js";

const IMAGE_MODE = 0o644;

export const installSysext: Executor<InstallSysextParams> = async (params, ctx) => {
  const { root, host } = ctx.deps;
  const imagePath = `${params.directory ?? "/var/lib/extensions"}/${params.name}.raw`;
  const target = await resolveHostPath(root, imagePath, { write: true });
  const want = { sha256: params.artifact.sha256, mode: IMAGE_MODE };
  let placed = false;
  if (!(await fileMatches(target.fsPath, want))) {
    const file = await download(ctx, params.artifact);
    placed = await placeFile(ctx, imagePath, { copyOf: file }, want);
  }
  await forgetDownload(root, params.artifact.sha256);
  // Refreshed even when the image was already in place: a crash may have come between placing and refreshing.
  if (params.refresh ?? true) {
    const result = await host.run("systemd-sysext", ["refresh"]);
    if (result.code !== 0) throw new HostCommandFailedError(`systemd-sysext refresh exited ${result.code}: ${result.stderr.trim()}`);
  }
  return { placed, image: imagePath };
};
