/** writeFiles: put whole files in place (atomic, mode, optional owner); a file already as asked is left alone. */
import type { WriteFilesParams } from "../../../contract/step-params.js";
import { sha256Hex } from "../fs-atomic.js";
import { resolveHostPath } from "../paths.js";
import type { Executor } from "./context.js";
import { assertNotDirectory, parseMode, placeFile } from "./host-changes.js";

export const writeFiles: Executor<WriteFilesParams> = async (params, ctx) => {
  // Every target is checked before the first write, so one bad path changes nothing.
  for (const f of params.files) {
    const target = await resolveHostPath(ctx.deps.root, f.path, { write: true });
    await assertNotDirectory(target.fsPath, target.hostPath);
  }
  const written: string[] = [];
  for (const f of params.files) {
    const want = { sha256: sha256Hex(f.content), mode: parseMode(f.mode), uid: f.uid, gid: f.gid };
    if (await placeFile(ctx, f.path, { content: f.content }, want)) written.push(f.path);
  }
  return { written, unchanged: params.files.length - written.length };
};
