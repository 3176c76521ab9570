/**
 * fetchArtifact: a pinned download placed as one file (with `mode`) or unpacked from tar.gz into a directory. Nothing
 * is placed before the sha256 matches; every file an archive writes is recorded with its prior state first. A rerun
 * checks the placed result (content, mode, links) and downloads nothing when it is already in place.
 */
import * as path from "node:path";
import type { FetchArtifactParams } from "../../../contract/step-params.js";
import { downloadVerified, forgetDownload } from "../artifact-download.js";
import { lstatIfExists, sha256File } from "../fs-atomic.js";
import { keyOf, type ExtractedEntry } from "../manifest.js";
import { fsPathOf, resolveHostPath } from "../paths.js";
import { UnsafeArchiveError } from "../step-errors.js";
import { readlink } from "node:fs/promises";
import { inspectArchive, unpackArchive } from "./archive.js";
import type { Executor, ExecutorContext } from "./context.js";
import { assertNotDirectory, capturePrior, ensureDirectory, fileMatches, parseMode, placeFile, refreshesFor, resolveDirectory } from "./host-changes.js";

/** Whether every recorded entry is on disk as the archive has it. */
export async function entriesInPlace(root: string, entries: readonly ExtractedEntry[]): Promise<boolean> {
  for (const e of entries) {
    const fsPath = fsPathOf(root, e.path);
    const stats = await lstatIfExists(fsPath);
    if (!stats) return false;
    if (e.kind === "dir" && !stats.isDirectory()) return false;
    if (e.kind === "symlink" && (!stats.isSymbolicLink() || (await readlink(fsPath)) !== e.linkTarget)) return false;
    if (e.kind === "file" && (!stats.isFile() || (await sha256File(fsPath)) !== e.sha256)) return false;
    if (e.mode !== undefined && e.kind !== "symlink" && (stats.mode & 0o777) !== e.mode) return false;
  }
  return true;
}

export function download(ctx: ExecutorContext, artifact: { url: string; sha256: string }): Promise<string> {
  const { root, ca, log } = ctx.deps;
  return downloadVerified({ root, url: artifact.url, sha256: artifact.sha256, ...(ca ? { ca } : {}), log });
}

async function fetchSingle(params: FetchArtifactParams, ctx: ExecutorContext) {
  const { root } = ctx.deps;
  const want = { sha256: params.artifact.sha256, mode: parseMode(params.mode ?? "0644") };
  const target = await resolveHostPath(root, params.destination, { write: true });
  await assertNotDirectory(target.fsPath, target.hostPath);
  if (await fileMatches(target.fsPath, want)) {
    await forgetDownload(root, params.artifact.sha256);
    return { placed: false, destination: params.destination };
  }
  const file = await download(ctx, params.artifact);
  await placeFile(ctx, params.destination, { copyOf: file }, want);
  await forgetDownload(root, params.artifact.sha256);
  return { placed: true, destination: params.destination };
}

async function fetchArchive(params: FetchArtifactParams, ctx: ExecutorContext) {
  const { root } = ctx.deps;
  const destination = await resolveDirectory(root, params.destination);
  const key = keyOf({ type: "extracted", destination, archiveSha256: params.artifact.sha256, entries: [] });
  const recorded = ctx.manifest.find("extracted", key);
  if (recorded && (await entriesInPlace(root, recorded.entries))) {
    await forgetDownload(root, params.artifact.sha256);
    return { placed: false, destination: params.destination, entries: recorded.entries.length };
  }
  const file = await download(ctx, params.artifact);
  let listed;
  try {
    listed = await inspectArchive(file, {
      destination: { hostDir: destination, fsDir: fsPathOf(root, destination) },
      ...(ctx.deps.archiveLimits ? { limits: ctx.deps.archiveLimits } : {}),
    });
    for (const e of listed) {
      const wanted = path.posix.join(destination, e.rel);
      const resolved = await resolveHostPath(root, wanted, { write: true });
      // A symlink already on the host must not carry an entry elsewhere (tar would also refuse to write through it).
      if (resolved.hostPath !== wanted) throw new UnsafeArchiveError(`entry ${e.rel} would land at ${resolved.hostPath} through an existing symlink`);
    }
  } catch (e) {
    // An archive that cannot be unpacked safely never will be: do not keep it around for a retry.
    await forgetDownload(root, params.artifact.sha256);
    throw e;
  }
  await ensureDirectory(ctx, destination);
  // After a crash mid-unpack the first record stands: the files on disk now are partly the archive's, not the prior ones.
  let entries = recorded?.entries;
  if (!entries) {
    entries = [];
    for (const e of listed) {
      const at = path.posix.join(destination, e.rel);
      const prior = await capturePrior(ctx.manifest, fsPathOf(root, at));
      entries.push({
        path: at,
        kind: e.kind,
        prior,
        ...(e.sha256 ? { sha256: e.sha256 } : {}),
        ...(e.mode !== undefined ? { mode: e.mode } : {}),
        ...(e.linkTarget ? { linkTarget: e.linkTarget } : {}),
      });
    }
    await ctx.manifest.record(ctx.stepId, ...refreshesFor(destination), { type: "extracted", destination, archiveSha256: params.artifact.sha256, entries });
  }
  await unpackArchive(file, fsPathOf(root, destination), listed);
  if (!(await entriesInPlace(root, entries))) throw new UnsafeArchiveError(`unpacking ${params.artifact.url} did not produce the entries it lists`);
  await forgetDownload(root, params.artifact.sha256);
  return { placed: true, destination: params.destination, entries: entries.length };
}

export const fetchArtifact: Executor<FetchArtifactParams> = (params, ctx) =>
  params.unpack === "tar.gz" ? fetchArchive(params, ctx) : fetchSingle(params, ctx);
