/**
 * A reset's first phase, as kubeadm reset's: before the units go, what runs under them goes. Stopping kubelet.service
 * stops no pod, and containerd's unit (KillMode=process) leaves its shims and containers running, so on a node that
 * ever ran pods an undo in manifest order would delete /var/lib/containerd under live containers and fail on
 * /var/lib/kubelet for the pod volumes (tmpfs, projected tokens) still mounted in it, every time.
 *
 * So, when the manifest records the kubelet started: the kubelet is stopped first (it would restart pods), then its
 * pods' slice (the plan's kubelet runs the systemd cgroup driver, so every container's process lives under
 * kubepods.slice: stopping the slice kills them, and their shims exit with them). Then whatever is mounted in a
 * directory a recorded unit owns is unmounted, deepest first, through its systemd mount unit (systemd keeps one for
 * every mount), so the agent runs no program beyond its four. What does not unmount stays, and the undo reports the
 * directory still_mounted and keeps it recorded for the next reset, as before.
 */
import type { Manifest } from "./manifest.js";
import type { HostCommands } from "./ports.js";
import { mountPointsUnder } from "./undo.js";

export const KUBELET_UNIT = "kubelet.service";
/** The kubelet's pods with the systemd cgroup driver (kubelet config cgroupDriver: systemd). */
export const KUBEPODS_SLICE = "kubepods.slice";
/** systemctl's exit status for a unit that is not loaded: nothing to stop. */
const NOT_LOADED = 5;

export interface ReleaseContext {
  root: string;
  host: HostCommands;
  manifest: Manifest;
  log(line: string): void;
}

export async function releaseWorkloads(ctx: ReleaseContext): Promise<void> {
  const runsKubelet = ctx.manifest.changes.some((c) => c.type === "unit" && c.unit === KUBELET_UNIT && c.action === "started");
  if (runsKubelet) {
    for (const unit of [KUBELET_UNIT, KUBEPODS_SLICE]) await stop(ctx, unit);
  }
  const owned = ctx.manifest.changes.flatMap((c) => (c.type === "unit-directory" ? [c.path] : []));
  const mounts = new Set<string>();
  for (const dir of owned) for (const m of await mountPointsUnder(ctx.root, dir)) mounts.add(m);
  // Deepest first: a mount inside another keeps the outer one busy.
  for (const mount of [...mounts].sort((a, b) => b.split("/").length - a.split("/").length || b.localeCompare(a))) {
    await stop(ctx, mountUnitName(mount));
  }
}

async function stop(ctx: ReleaseContext, unit: string): Promise<void> {
  const r = await ctx.host.run("systemctl", ["stop", unit]);
  if (r.code !== 0 && r.code !== NOT_LOADED) ctx.log(`reset: systemctl stop ${unit} exited ${r.code}: ${r.stderr.trim()}`);
}

/**
 * The mount unit systemd names after a mount point (systemd.unit(5), "String Escaping for Inclusion in Unit Names";
 * systemd-escape --path --suffix=mount): slashes become dashes, and every byte outside [A-Za-z0-9:_.] (and a leading
 * dot) becomes \xNN, so a pod's ".../kubernetes.io~projected/kube-api-access-x" names exactly one unit.
 */
export function mountUnitName(mountPoint: string): string {
  const trimmed = mountPoint.split("/").filter(Boolean).join("/");
  if (trimmed === "") return "-.mount";
  let out = "";
  for (const [i, byte] of [...Buffer.from(trimmed, "utf8")].entries()) {
    const c = String.fromCharCode(byte);
    if (c === "/") out += "-";
    else if (/[A-Za-z0-9:_]/.test(c) || (c === "." && i > 0)) out += c;
    else out += `\\x${byte.toString(16).padStart(2, "0")}`;
  }
  return `${out}.mount`;
}
