/**
 * Host paths (as the service names them, e.g. /etc/sysctl.d/x.conf) resolved under the agent's root ("/" on a node,
 * a sandbox directory in tests). Symlinks in the parent chain are followed the way a chroot would see them, so an
 * absolute link target stays under the root and a relative one cannot climb out of it; the last component is not
 * followed, since writes replace it with rename. Writes are refused under /usr (read-only on immutable hosts),
 * outside /etc, /var and /opt, and on the agent's own files (its state directory, settings, executable, image and
 * units: AGENT_PATHS in contract/step-params.ts), also when a symlink would carry them there. The step params schemas
 * refuse the same paths; this is the check that holds whatever reaches an executor.
 */
import { lstat, readlink } from "node:fs/promises";
import * as path from "node:path";
import { absolutePathProblem, agentPathProblem, WRITABLE_ROOTS } from "../../contract/step-params.js";
import { PathNotAllowedError, PreconditionFailedError, SymlinkInPathError, UsrWriteRefusedError } from "./step-errors.js";

export { UsrWriteRefusedError } from "./step-errors.js";

const MAX_SYMLINK_HOPS = 40;

export interface ResolvedPath {
  /** The path as the host sees it, after following symlinks in its parent chain. */
  hostPath: string;
  /** Where that is on this process's file system (`root` joined with hostPath). */
  fsPath: string;
}

export function fsPathOf(root: string, hostPath: string): string {
  return root === "/" ? hostPath : path.join(root, hostPath);
}

export function isUnder(hostPath: string, dir: string): boolean {
  return hostPath === dir || hostPath.startsWith(`${dir}/`);
}

function checkWritable(hostPath: string, requested: string): void {
  const via = hostPath === requested ? "" : ` (${requested} resolves to it through a symlink)`;
  if (isUnder(hostPath, "/usr")) throw new UsrWriteRefusedError(`refusing to write ${hostPath}${via}: /usr is never written (read-only on immutable hosts)`);
  if (!WRITABLE_ROOTS.some((r) => hostPath.startsWith(`${r}/`)))
    throw new PathNotAllowedError(`refusing to write ${hostPath}${via}: only ${WRITABLE_ROOTS.join(", ")} are written`);
  const own = agentPathProblem(hostPath);
  if (own) throw new PathNotAllowedError(`refusing to write ${hostPath}${via}: it ${own}`);
}

function errnoOf(e: unknown): string | undefined {
  return typeof e === "object" && e !== null && "code" in e ? String((e as { code: unknown }).code) : undefined;
}

export async function resolveHostPath(root: string, requested: string, options: { write: boolean }): Promise<ResolvedPath> {
  const problem = absolutePathProblem(requested);
  if (problem) throw new PathNotAllowedError(`path ${JSON.stringify(requested)} ${problem}`);
  if (options.write) checkWritable(requested, requested);
  if (requested === "/") return { hostPath: "/", fsPath: fsPathOf(root, "/") };

  const parts = requested.split("/").slice(1);
  const last = parts.pop()!;
  let resolved: string[] = [];
  const pending = [...parts];
  let hops = 0;
  while (pending.length > 0) {
    const component = pending.shift()!;
    if (component === "" || component === ".") continue;
    if (component === "..") {
      if (resolved.length === 0) throw new PathNotAllowedError(`${requested} climbs above the root through a symlink`);
      resolved.pop();
      continue;
    }
    const candidate = [...resolved, component];
    const candidateFs = fsPathOf(root, `/${candidate.join("/")}`);
    let stats;
    try {
      stats = await lstat(candidateFs);
    } catch (e) {
      if (errnoOf(e) !== "ENOENT") throw e;
      resolved = candidate;
      continue;
    }
    if (stats.isSymbolicLink()) {
      hops += 1;
      if (hops > MAX_SYMLINK_HOPS) throw new PathNotAllowedError(`${requested}: too many levels of symbolic links`);
      const target = await readlink(candidateFs);
      if (target.startsWith("/")) resolved = [];
      pending.unshift(...target.split("/"));
      continue;
    }
    if (!stats.isDirectory()) throw new PreconditionFailedError("not_a_directory", `${requested}: /${candidate.join("/")} is not a directory`);
    resolved = candidate;
  }
  const hostPath = `/${[...resolved, last].join("/")}`;
  if (options.write) checkWritable(hostPath, requested);
  return { hostPath, fsPath: fsPathOf(root, hostPath) };
}

/**
 * A path the manifest recorded, for undoing it: no symlink is ever followed. It is checked like a write (absolute,
 * normalised, under /etc, /var or /opt, never /usr nor the agent's own files, so a manifest naming those never makes
 * a reset change them), then each parent component is lstat'ed from the root down: a symlink there (a parent swapped
 * since the record, which always names the resolved path) is refused with SymlinkInPathError. `parentMissing`: a
 * parent is absent or not a directory, so nothing recorded can be below it. The check and the undo are separate calls
 * (Node has no openat); what is left is a race with someone who can already replace directories under /etc, /var or
 * /opt, i.e. root.
 */
export async function resolveRecordedPath(root: string, hostPath: string): Promise<{ fsPath: string; parentMissing: boolean }> {
  const problem = absolutePathProblem(hostPath);
  if (problem) throw new PathNotAllowedError(`path ${JSON.stringify(hostPath)} ${problem}`);
  checkWritable(hostPath, hostPath);
  const parents = hostPath.split("/").slice(1, -1);
  for (let i = 1; i <= parents.length; i++) {
    const prefix = `/${parents.slice(0, i).join("/")}`;
    let stats;
    try {
      stats = await lstat(fsPathOf(root, prefix));
    } catch (e) {
      if (errnoOf(e) !== "ENOENT") throw e;
      return { fsPath: fsPathOf(root, hostPath), parentMissing: true };
    }
    if (stats.isSymbolicLink()) {
      const target = await readlink(fsPathOf(root, prefix));
      throw new SymlinkInPathError(
        `${hostPath}: ${prefix} is now a symbolic link (to ${target}), not the directory the change was recorded in; nothing is changed through it`,
      );
    }
    if (!stats.isDirectory()) return { fsPath: fsPathOf(root, hostPath), parentMissing: true };
  }
  return { fsPath: fsPathOf(root, hostPath), parentMissing: false };
}
