/**
 * Undo of each recorded change. Every undo converges on the prior state from wherever the host is now, so it also
 * works when the effect never happened (a crash right after the record) or was already undone (a crashed reset).
 *
 * An undo removes only what was recorded and never follows a symlink: each recorded path's parents must still be
 * real directories (resolveRecordedPath; a parent swapped for a link fails the undo, which stays recorded), a file or
 * link is unlinked (a link, not its target), and a directory the agent created is removed only once it is empty. A
 * created directory still holding content the agent did not record is left in place and reported (`leave`), never
 * removed recursively. The one exception is a directory a started unit declares and the plan owns ("unit-directory":
 * /var/lib/kubelet, /var/lib/containerd): what is in it is the unit's, so it goes whole, after the unit stopped, with
 * the same parent check, never when it is now a link, and never while something is mounted in it (a pod volume the
 * kubelet did not unmount: removing through it would delete the volume's data).
 */
import { chmod, chown, lchown, mkdir, readdir, readFile, readlink, rmdir, rm, symlink, unlink } from "node:fs/promises";
import type { Stats } from "node:fs";
import * as path from "node:path";
import { fsyncDir, lstatIfExists, sha256File, tempPathFor, writeFileAtomic } from "./fs-atomic.js";
import type { Change, Manifest, PriorState } from "./manifest.js";
import { fsPathOf, resolveRecordedPath } from "./paths.js";
import { parseMountinfo } from "./mountinfo.js";
import type { HostCommands } from "./ports.js";
import { HostCommandFailedError, PreconditionFailedError } from "./step-errors.js";
import { readSysctl, normaliseSysctlValue } from "./executors/sysctl.js";
import { moduleLoaded } from "./executors/kernel-modules.js";
import { systemctl, unitFileState } from "./executors/systemd-units.js";

export interface UndoContext {
  root: string;
  host: HostCommands;
  manifest: Manifest;
  /** Told about what is left in place instead of deleting content the agent did not record. */
  leave?(hostPath: string, why: string): void;
}

/** What the agent created at a path whose prior state is "absent". */
type Created = "dir" | "file";

async function setOwner(fsPath: string, uid: number, gid: number, link: boolean): Promise<void> {
  const stats = await lstatIfExists(fsPath);
  if (!stats || (stats.uid === uid && stats.gid === gid)) return;
  await (link ? lchown : chown)(fsPath, uid, gid);
}

function kindOf(stats: Stats): string {
  return stats.isSymbolicLink() ? "a symbolic link" : stats.isDirectory() ? "a directory" : stats.isFile() ? "a file" : "a special file";
}

/** Removes an empty directory; false (nothing removed) when it holds anything. */
async function removeIfEmpty(fsPath: string): Promise<boolean> {
  try {
    await rmdir(fsPath);
    return true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOTEMPTY" || code === "EEXIST") return false;
    throw e;
  }
}

async function contentsOf(fsPath: string): Promise<string> {
  const names = (await readdir(fsPath)).sort();
  return `${names.slice(0, 5).join(", ")}${names.length > 5 ? ` and ${names.length - 5} more` : ""}`;
}

/** Takes away what the agent created at `hostPath` (prior state "absent"), or leaves and reports what it did not. */
async function removeCreated(ctx: UndoContext, hostPath: string, fsPath: string, current: Stats, created: Created): Promise<void> {
  if (current.isDirectory()) {
    if (!(await removeIfEmpty(fsPath))) return ctx.leave?.(hostPath, `not empty: holds what the agent did not record (${await contentsOf(fsPath)})`);
  } else if (created === "dir") {
    return ctx.leave?.(hostPath, `the directory the agent created is now ${kindOf(current)}; left as it is`);
  } else {
    // A file, or a link put where the file was: unlink never follows it.
    await unlink(fsPath);
  }
  await fsyncDir(path.dirname(fsPath));
}

/** Makes room for a prior file or link: a directory now in its place goes only when empty. */
async function clearFor(hostPath: string, fsPath: string, current: Stats | undefined): Promise<void> {
  if (!current) return;
  if (!current.isDirectory()) return unlink(fsPath);
  if (!(await removeIfEmpty(fsPath))) {
    throw new PreconditionFailedError(
      "path_is_directory",
      `${hostPath} is now a directory holding what the agent did not record (${await contentsOf(fsPath)}); its prior content is not put back over it`,
    );
  }
}

/** Puts `hostPath` back as `prior` describes; `created` says what the agent made there when nothing was there before. */
export async function restorePrior(ctx: UndoContext, hostPath: string, prior: PriorState, created: Created = "file"): Promise<void> {
  const { fsPath, parentMissing } = await resolveRecordedPath(ctx.root, hostPath);
  // A missing parent: nothing recorded can be below it; only a prior state that existed needs putting back.
  if (parentMissing && prior.state === "absent") return;
  if (!parentMissing) await rm(tempPathFor(fsPath), { force: true });
  const current = parentMissing ? undefined : await lstatIfExists(fsPath);
  switch (prior.state) {
    case "absent":
      if (current) await removeCreated(ctx, hostPath, fsPath, current, created);
      return;
    case "dir":
      if (current && !current.isDirectory()) await unlink(fsPath);
      if (!current?.isDirectory()) await mkdir(fsPath, { recursive: true });
      await chmod(fsPath, prior.mode);
      await setOwner(fsPath, prior.uid, prior.gid, false);
      return;
    case "file": {
      const same =
        current?.isFile() &&
        (current.mode & 0o7777) === prior.mode &&
        current.uid === prior.uid &&
        current.gid === prior.gid &&
        (await sha256File(fsPath)) === prior.blob;
      if (same) return;
      if (current?.isDirectory()) await clearFor(hostPath, fsPath, current);
      await mkdir(path.dirname(fsPath), { recursive: true });
      await writeFileAtomic(fsPath, await ctx.manifest.readBlob(prior.blob), { mode: prior.mode, uid: prior.uid, gid: prior.gid });
      return;
    }
    case "symlink": {
      if (current?.isSymbolicLink() && (await readlink(fsPath)) === prior.target) {
        await setOwner(fsPath, prior.uid, prior.gid, true);
        return;
      }
      await clearFor(hostPath, fsPath, current);
      await mkdir(path.dirname(fsPath), { recursive: true });
      await symlink(prior.target, fsPath);
      await setOwner(fsPath, prior.uid, prior.gid, true);
      await fsyncDir(path.dirname(fsPath));
      return;
    }
  }
}

async function removeUnitDirectory(ctx: UndoContext, hostPath: string): Promise<void> {
  const { fsPath, parentMissing } = await resolveRecordedPath(ctx.root, hostPath);
  if (parentMissing) return;
  const current = await lstatIfExists(fsPath);
  if (!current) return;
  if (!current.isDirectory()) return ctx.leave?.(hostPath, `the unit's directory is now ${kindOf(current)}; left as it is`);
  const mounts = await mountPointsUnder(ctx.root, hostPath);
  // Stays recorded (a failed undo), so the reset after the unmount takes it.
  if (mounts.length > 0)
    throw new PreconditionFailedError("still_mounted", `${hostPath} has mounts in it (${mounts.slice(0, 5).join(", ")}); unmount them first`);
  // rm never follows a link inside the tree: a link is unlinked, not traversed.
  await rm(fsPath, { recursive: true, force: true });
  await fsyncDir(path.dirname(fsPath));
}

/** Mount points at or below `hostPath` in this root's /proc/self/mountinfo (none when it cannot be read). */
export async function mountPointsUnder(root: string, hostPath: string): Promise<string[]> {
  const text = await readFile(fsPathOf(root, "/proc/self/mountinfo"), "utf8").catch(() => "");
  return parseMountinfo(text)
    .map((m) => m.mountPoint)
    .filter((m) => m === hostPath || m.startsWith(`${hostPath}/`));
}

export async function undoChange(ctx: UndoContext, change: Change): Promise<void> {
  const { host } = ctx;
  switch (change.type) {
    case "file":
      return restorePrior(ctx, change.path, change.prior);
    case "directory":
      return restorePrior(ctx, change.path, { state: "absent" }, "dir");
    case "unit-directory":
      return removeUnitDirectory(ctx, change.path);
    case "extracted":
      for (const entry of [...change.entries].reverse()) await restorePrior(ctx, entry.path, entry.prior, entry.kind === "dir" ? "dir" : "file");
      return;
    case "sysctl": {
      if (change.prior === null) return;
      const current = await readSysctl(ctx.root, change.name);
      // Gone (its module unloaded) or already back: nothing to write.
      if (current === null || current === normaliseSysctlValue(change.prior)) return;
      const r = await host.run("sysctl", ["-w", `${change.name}=${change.prior}`]);
      if (r.code !== 0) throw new HostCommandFailedError(`sysctl -w ${change.name} exited ${r.code}: ${r.stderr.trim()}`);
      return;
    }
    case "module": {
      if (!(await moduleLoaded(ctx.root, change.name))) return;
      const r = await host.run("modprobe", ["-r", change.name]);
      if (r.code !== 0) throw new HostCommandFailedError(`modprobe -r ${change.name} exited ${r.code}: ${r.stderr.trim()}`);
      return;
    }
    case "unit": {
      // A unit whose file is already gone has nothing left to disable or stop.
      if (!(await unitFileState(host, change.unit)).found) return;
      const verb = { enabled: "disable", disabled: "enable", started: "stop", stopped: "start" }[change.action];
      return systemctl(host, [verb, change.unit]);
    }
    case "refresh":
      if (change.program === "sysext") {
        const r = await host.run("systemd-sysext", ["refresh"]);
        if (r.code !== 0) throw new HostCommandFailedError(`systemd-sysext refresh exited ${r.code}: ${r.stderr.trim()}`);
        return;
      }
      return systemctl(host, ["daemon-reload"]);
  }
}
