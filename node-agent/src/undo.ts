/**
 * Undo of each recorded change. Every undo converges on the prior state from wherever the host is now, so it also
 * works when the effect never happened (a crash right after the record) or was already undone (a crashed reset).
 */
import { chmod, chown, lchown, mkdir, readlink, rm, symlink } from "node:fs/promises";
import * as path from "node:path";
import { fsyncDir, lstatIfExists, sha256File, tempPathFor, writeFileAtomic } from "./fs-atomic.js";
import type { Change, Manifest, PriorState } from "./manifest.js";
import { resolveHostPath } from "./paths.js";
import type { HostCommands } from "./ports.js";
import { HostCommandFailedError } from "./step-errors.js";
import { readSysctl, normaliseSysctlValue } from "./executors/sysctl.js";
import { moduleLoaded } from "./executors/kernel-modules.js";
import { systemctl, unitFileState } from "./executors/systemd-units.js";

export interface UndoContext {
  root: string;
  host: HostCommands;
  manifest: Manifest;
}

async function setOwner(fsPath: string, uid: number, gid: number, link: boolean): Promise<void> {
  const stats = await lstatIfExists(fsPath);
  if (!stats || (stats.uid === uid && stats.gid === gid)) return;
  await (link ? lchown : chown)(fsPath, uid, gid);
}

/** Puts `hostPath` back as `prior` describes. */
export async function restorePrior(ctx: UndoContext, hostPath: string, prior: PriorState): Promise<void> {
  const target = await resolveHostPath(ctx.root, hostPath, { write: true });
  const fsPath = target.fsPath;
  await rm(tempPathFor(fsPath), { force: true });
  const current = await lstatIfExists(fsPath);
  switch (prior.state) {
    case "absent":
      if (current) {
        await rm(fsPath, { recursive: true, force: true });
        await fsyncDir(path.dirname(fsPath));
      }
      return;
    case "dir":
      if (current && !current.isDirectory()) await rm(fsPath, { force: true });
      if (!current?.isDirectory()) await mkdir(fsPath, { recursive: true });
      await chmod(fsPath, prior.mode);
      await setOwner(fsPath, prior.uid, prior.gid, false);
      return;
    case "file": {
      const same = current?.isFile() && (current.mode & 0o7777) === prior.mode && current.uid === prior.uid && current.gid === prior.gid && (await sha256File(fsPath)) === prior.blob;
      if (same) return;
      if (current?.isDirectory()) await rm(fsPath, { recursive: true, force: true });
      await mkdir(path.dirname(fsPath), { recursive: true });
      await writeFileAtomic(fsPath, await ctx.manifest.readBlob(prior.blob), { mode: prior.mode, uid: prior.uid, gid: prior.gid });
      return;
    }
    case "symlink": {
      if (current?.isSymbolicLink() && (await readlink(fsPath)) === prior.target) {
        await setOwner(fsPath, prior.uid, prior.gid, true);
        return;
      }
      if (current) await rm(fsPath, { recursive: true, force: true });
      await mkdir(path.dirname(fsPath), { recursive: true });
      await symlink(prior.target, fsPath);
      await setOwner(fsPath, prior.uid, prior.gid, true);
      await fsyncDir(path.dirname(fsPath));
      return;
    }
  }
}

export async function undoChange(ctx: UndoContext, change: Change): Promise<void> {
  const { host } = ctx;
  switch (change.type) {
    case "file":
      return restorePrior(ctx, change.path, change.prior);
    case "directory":
      return restorePrior(ctx, change.path, { state: "absent" });
    case "extracted":
      for (const entry of [...change.entries].reverse()) await restorePrior(ctx, entry.path, entry.prior);
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
