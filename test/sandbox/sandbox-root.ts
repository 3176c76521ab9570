/**
 * A node's sandbox root: a directory the agent treats as "/" (its `--root`), seeded with the handful of host files a
 * real machine has and the agent reads — os-release, machine-id, the DMI product UUID, cgroup v2 controllers, an
 * empty swap table, kernel state under /proc/sys and /sys/module — so facts, preflight and the executors see a
 * plausible Flatcar (immutable) or Ubuntu (mutable) host. And a tree hash to prove a reset restored it.
 */
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { lstat, mkdir, readdir, readFile, readlink, writeFile } from "node:fs/promises";
import { release } from "node:os";
import * as path from "node:path";

export interface HostProfile {
  hostname: string;
  /** Flatcar Container Linux (read-only /usr, sysext images) or Ubuntu (binaries under /opt/flexnode). */
  immutable: boolean;
}

const OS_RELEASE = {
  flatcar:
    'NAME="Flatcar Container Linux by Kinvolk"\nID=flatcar\nID_LIKE=coreos\nVERSION_ID=4081.2.0\nPRETTY_NAME="Flatcar Container Linux by Kinvolk 4081.2.0 (Oklo)"\n',
  ubuntu: 'NAME="Ubuntu"\nID=ubuntu\nID_LIKE=debian\nVERSION_ID="24.04"\nPRETTY_NAME="Ubuntu 24.04.1 LTS"\n',
};

/** Kernel settings the plan changes, at a fresh host's values (net.bridge.* appear with br_netfilter). */
const PRIOR_SYSCTLS: Record<string, string> = { "net.ipv4.ip_forward": "0", "vm.overcommit_memory": "0", "kernel.panic": "0", "kernel.panic_on_oops": "0" };
/** Modules a fresh host has loaded (overlay and br_netfilter are not among them, so the plan loads them). */
const LOADED_MODULES = ["ip_tables", "nf_conntrack", "x_tables"];

export async function seedHostRoot(root: string, profile: HostProfile): Promise<void> {
  const put = async (hostPath: string, content: string, mode = 0o644) => {
    const fsPath = path.join(root, hostPath);
    await mkdir(path.dirname(fsPath), { recursive: true });
    await writeFile(fsPath, content, { mode });
  };
  const osRelease = profile.immutable ? OS_RELEASE.flatcar : OS_RELEASE.ubuntu;
  await put("/usr/lib/os-release", osRelease);
  await put("/etc/os-release", osRelease);
  await put("/etc/hostname", `${profile.hostname}\n`);
  await put("/etc/machine-id", `${randomBytes(16).toString("hex")}\n`, 0o444);
  await put("/sys/class/dmi/id/product_uuid", `${randomUUID()}\n`, 0o400);
  await put("/sys/fs/cgroup/cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc\n");
  await put("/proc/swaps", "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n", 0o444);
  for (const [key, value] of Object.entries(PRIOR_SYSCTLS)) await put(`/proc/sys/${key.replaceAll(".", "/")}`, `${value}\n`);
  for (const m of LOADED_MODULES) await mkdir(path.join(root, "sys/module", m), { recursive: true });
  // The module index of the kernel preflight runs on (this machine's: preflight asks os.release(), not the facts).
  const modulesDir = profile.immutable ? "/usr/lib/modules" : "/lib/modules";
  await put(
    `${modulesDir}/${release()}/modules.dep`,
    "kernel/fs/overlayfs/overlay.ko:\nkernel/net/bridge/bridge.ko: kernel/net/802/stp.ko kernel/net/llc/llc.ko\nkernel/net/bridge/br_netfilter.ko: kernel/net/bridge/bridge.ko kernel/net/802/stp.ko kernel/net/llc/llc.ko\n",
  );
  await put("/proc/modules", LOADED_MODULES.map((m) => `${m} 32768 1 - Live 0x0000000000000000\n`).join(""), 0o444);
  for (const dir of ["/etc/systemd/system", "/var/lib", "/opt", "/run"]) await mkdir(path.join(root, dir), { recursive: true });
  if (profile.immutable) {
    // Flatcar's own files the plan must leave alone: a vendor unit in /usr and an admin's sysctl drop-in in /etc.
    await put("/usr/lib/systemd/system/locksmithd.service", "[Unit]\nDescription=Cluster reboot manager\n");
  }
  await put("/etc/sysctl.d/50-admin.conf", "# an administrator's own setting, which onboarding must not touch\nkernel.sysrq = 0\n");
}

/** Host paths the agent keeps its own records in (identity, state, manifest, downloads): not part of the host's state. */
export const AGENT_STATE_DIR = "var/lib/flexnode";

export interface TreeSnapshot {
  hash: string;
  /** One line per entry: path, type, mode, owner, and content digest or link target. */
  entries: string[];
}

/** A digest of everything under `root` except the agent's own state directory. */
export async function treeSnapshot(root: string, exclude: readonly string[] = [AGENT_STATE_DIR]): Promise<TreeSnapshot> {
  const entries: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    const names = (await readdir(path.join(root, rel))).sort();
    for (const name of names) {
      const child = rel ? `${rel}/${name}` : name;
      if (exclude.includes(child)) continue;
      const full = path.join(root, child);
      const st = await lstat(full);
      const meta = `${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`;
      if (st.isSymbolicLink()) entries.push(`${child} link ${meta} -> ${await readlink(full)}`);
      else if (st.isDirectory()) {
        entries.push(`${child}/ dir ${meta}`);
        await walk(child);
      } else if (st.isFile())
        entries.push(
          `${child} file ${meta} ${createHash("sha256")
            .update(await readFile(full))
            .digest("hex")}`,
        );
      else entries.push(`${child} other ${meta}`);
    }
  };
  await walk("");
  return { hash: createHash("sha256").update(entries.join("\n")).digest("hex"), entries };
}

/** Entries only in `a` (-) or only in `b` (+), for a readable failure message. */
export function treeDiff(a: TreeSnapshot, b: TreeSnapshot): string[] {
  const inA = new Set(a.entries);
  const inB = new Set(b.entries);
  return [...a.entries.filter((e) => !inB.has(e)).map((e) => `- ${e}`), ...b.entries.filter((e) => !inA.has(e)).map((e) => `+ ${e}`)];
}
