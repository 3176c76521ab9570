/**
 * Whether this machine can run the real-host tier, and if not, why — the reason a skipped test states. It needs to
 * run as root with systemd-nspawn, unshare, nsenter, losetup, debootstrap and mksquashfs, a kernel with squashfs and
 * overlayfs, and loop devices.
 */
import { spawnSync } from "node:child_process";
import { access, constants, readFile } from "node:fs/promises";

const TOOLS = ["systemd-nspawn", "unshare", "nsenter", "losetup", "debootstrap", "mksquashfs", "mount", "openssl"] as const;
const PATH_DIRS = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];

export type Availability = { ok: true } | { ok: false; reason: string };

async function onPath(tool: string): Promise<boolean> {
  for (const dir of PATH_DIRS) {
    try {
      await access(`${dir}/${tool}`, constants.X_OK);
      return true;
    } catch {
      // next directory
    }
  }
  return false;
}

export async function hostTierAvailability(options: { needRoot?: boolean } = {}): Promise<Availability> {
  if (process.platform !== "linux") return { ok: false, reason: `the real-host tier needs Linux (this is ${process.platform})` };
  if ((options.needRoot ?? true) && process.geteuid?.() !== 0)
    return { ok: false, reason: "the real-host tier boots a container with systemd-nspawn and must run as root" };
  if (process.geteuid?.() !== 0) return { ok: false, reason: "building the cached root (debootstrap) needs root" };
  const missing: string[] = [];
  for (const tool of TOOLS) if (!(await onPath(tool))) missing.push(tool);
  if (missing.length > 0)
    return { ok: false, reason: `missing ${missing.join(", ")} (Debian: apt-get install systemd-container debootstrap squashfs-tools; .ci/run installs them)` };
  const filesystems = await readFile("/proc/filesystems", "utf8").catch(() => "");
  for (const fs of ["squashfs", "overlay"])
    if (!new RegExp(`\\b${fs}$`, "m").test(filesystems)) return { ok: false, reason: `the kernel has no ${fs} file system (systemd-sysext needs it)` };
  try {
    await access("/dev/loop-control", constants.R_OK | constants.W_OK);
  } catch {
    return { ok: false, reason: "no /dev/loop-control: systemd-sysext mounts images through loop devices" };
  }
  // Root without the capabilities (an unprivileged container) cannot make mount namespaces, so nspawn cannot run.
  const probe = spawnSync("unshare", ["--mount", "--propagation", "private", "true"], { stdio: "ignore", timeout: 10_000 });
  if (probe.status !== 0) return { ok: false, reason: "cannot create a mount namespace here (unshare --mount failed): systemd-nspawn cannot run" };
  return { ok: true };
}
