/**
 * The recorded edits every executor is built from: create directories, place files. Each captures the prior state,
 * records it in the manifest, and only then touches the host; each is a no-op when the host already matches.
 */
import { chmod, mkdir, readFile, readlink } from "node:fs/promises";
import * as path from "node:path";
import { SYSEXT_DIRECTORIES } from "../../../contract/step-params.js";
import { copyFileAtomic, lstatIfExists, sha256File, writeFileAtomic, type FileAttributes } from "../fs-atomic.js";
import { keyOf, type ChangeBody, type Manifest, type PriorState } from "../manifest.js";
import { fsPathOf, isUnder, resolveHostPath } from "../paths.js";
import { PreconditionFailedError } from "../step-errors.js";
import type { ExecutorContext } from "./context.js";

/** The state of `fsPath` as an undo needs it; a file's content is kept as a prior blob first. */
export async function capturePrior(manifest: Manifest, fsPath: string): Promise<PriorState> {
  const stats = await lstatIfExists(fsPath);
  if (!stats) return { state: "absent" };
  if (stats.isSymbolicLink()) return { state: "symlink", target: await readlink(fsPath), uid: stats.uid, gid: stats.gid };
  if (stats.isDirectory()) return { state: "dir", mode: stats.mode & 0o7777, uid: stats.uid, gid: stats.gid };
  if (!stats.isFile()) throw new PreconditionFailedError("unsupported_file_type", `${fsPath} is neither a file, a directory nor a symlink`);
  const blob = await manifest.storeBlob(await readFile(fsPath));
  return { state: "file", blob, mode: stats.mode & 0o7777, uid: stats.uid, gid: stats.gid };
}

/** A directory's host path with symlinks followed all the way (including its last component). */
export async function resolveDirectory(root: string, hostDir: string): Promise<string> {
  // Resolving a child resolves every component of hostDir as a parent, which follows the last one too.
  const child = await resolveHostPath(root, `${hostDir}/flexnode-probe`, { write: true });
  return path.posix.dirname(child.hostPath);
}

/** Creates `hostDir` and its missing parents (recorded as created by this step). Returns the resolved host path. */
export async function ensureDirectory(ctx: ExecutorContext, hostDir: string, mode = 0o755): Promise<string> {
  const { root } = ctx.deps;
  const resolved = await resolveDirectory(root, hostDir);
  const missing: string[] = [];
  const parts = resolved.split("/").slice(1);
  for (let i = 1; i <= parts.length; i++) {
    const prefix = `/${parts.slice(0, i).join("/")}`;
    const stats = missing.length > 0 ? undefined : await lstatIfExists(fsPathOf(root, prefix));
    if (stats && !stats.isDirectory()) throw new PreconditionFailedError("not_a_directory", `${prefix} exists and is not a directory`);
    if (!stats) missing.push(prefix);
  }
  if (missing.length === 0) return resolved;
  await ctx.manifest.record(ctx.stepId, ...missing.map((p): ChangeBody => ({ type: "directory", path: p })));
  for (const p of missing) {
    await mkdir(fsPathOf(root, p), { recursive: true });
    await chmod(fsPathOf(root, p), mode);
  }
  return resolved;
}

/** Reloads the host must do after undoing a change at `hostPath`, recorded before that change. */
export function refreshesFor(hostPath: string): ChangeBody[] {
  const refreshes: ChangeBody[] = [];
  if (isUnder(hostPath, "/etc/systemd")) refreshes.push({ type: "refresh", program: "daemon-reload" });
  if (SYSEXT_DIRECTORIES.some((d) => isUnder(hostPath, d))) refreshes.push({ type: "refresh", program: "sysext" });
  return refreshes;
}

export type FileSource = { content: string | Uint8Array } | { copyOf: string };

export interface DesiredFile extends FileAttributes {
  sha256: string;
}

/** Whether the file at `fsPath` already is the desired one (owner only compared when asked for). */
export async function fileMatches(fsPath: string, want: DesiredFile): Promise<boolean> {
  const stats = await lstatIfExists(fsPath);
  if (!stats?.isFile()) return false;
  if ((stats.mode & 0o7777) !== want.mode) return false;
  if (want.uid !== undefined && stats.uid !== want.uid) return false;
  if (want.gid !== undefined && stats.gid !== want.gid) return false;
  return (await sha256File(fsPath)) === want.sha256;
}

/** Refuses a target that is a directory, before anything is changed. */
export async function assertNotDirectory(fsPath: string, hostPath: string): Promise<void> {
  const stats = await lstatIfExists(fsPath);
  if (stats?.isDirectory()) throw new PreconditionFailedError("path_is_directory", `${hostPath} is a directory; a file cannot replace it`);
}

/**
 * Puts a file at `hostPath` (atomically, with mode and owner), recording its prior state first. Returns false when
 * the file was already as desired.
 */
export async function placeFile(ctx: ExecutorContext, hostPath: string, source: FileSource, want: DesiredFile): Promise<boolean> {
  const { root } = ctx.deps;
  const target = await resolveHostPath(root, hostPath, { write: true });
  await assertNotDirectory(target.fsPath, target.hostPath);
  if (await fileMatches(target.fsPath, want)) return false;
  await ensureDirectory(ctx, path.posix.dirname(target.hostPath));
  // Resolve again: the parents exist now, so the recorded path is exactly the one written.
  const final = await resolveHostPath(root, hostPath, { write: true });
  // Already recorded (by an earlier step, or by this one before a crash): that first record holds the true prior state.
  const recorded = ctx.manifest.has(keyOf({ type: "file", path: final.hostPath, prior: { state: "absent" } }));
  const prior = recorded ? undefined : await capturePrior(ctx.manifest, final.fsPath);
  await ctx.manifest.record(ctx.stepId, ...refreshesFor(final.hostPath), ...(prior ? [{ type: "file" as const, path: final.hostPath, prior }] : []));
  if ("content" in source) await writeFileAtomic(final.fsPath, source.content, want);
  else await copyFileAtomic(source.copyOf, final.fsPath, want);
  return true;
}

export function parseMode(mode: string): number {
  return Number.parseInt(mode, 8);
}
