/**
 * A sandbox root that looks like a freshly enrolled host: the agent's state directory, site files the plan will
 * change (a modules-load.d and a sysctl.d file with other content, a CNI plugin the archive replaces, a file owned by
 * another user), and the kernel/systemd state the fake host models (/proc, /sys, /run/fakehost).
 */
import { chown, mkdir, mkdtemp, symlink, writeFile } from "node:fs/promises";
import { release, tmpdir } from "node:os";
import * as path from "node:path";

export interface SandboxOptions {
  immutable?: boolean;
}

export async function createSandbox(options: SandboxOptions = {}): Promise<string> {
  const root = await mkdtemp(path.join(tmpdir(), "flexnode-host-"));
  const file = async (p: string, content: string, mode = 0o644) => {
    await mkdir(path.dirname(path.join(root, p)), { recursive: true });
    await writeFile(path.join(root, p), content, { mode });
  };
  const dir = (p: string, mode = 0o755) => mkdir(path.join(root, p), { recursive: true, mode });

  await dir("etc/systemd/system/multi-user.target.wants");
  await dir("etc/flexnode");
  await file("etc/modules-load.d/flexnode.conf", "# site modules\nloop\n");
  await file("etc/sysctl.d/99-flexnode-kubernetes.conf", "# site settings\nvm.swappiness = 10\n", 0o640);
  // Owned by someone else, so a reset that loses ownership shows in the tree hash.
  await chown(path.join(root, "etc/sysctl.d/99-flexnode-kubernetes.conf"), 1000, 1000).catch(() => undefined);
  await symlink("/usr/share/zoneinfo/UTC", path.join(root, "etc/localtime"));
  await file("etc/hostname", "edge-1\n");

  await dir("var/lib/flexnode", 0o700);
  await file("var/lib/flexnode/identity.key", "not a real key\n", 0o600);
  await dir("var/tmp");
  await file("opt/cni/bin/loopback", "#!/bin/sh\n# distro loopback plugin\n", 0o755);
  await file("opt/cni/bin/dhcp", "#!/bin/sh\n# distro dhcp plugin\n", 0o755);

  await dir("usr/bin");
  await dir("usr/lib/systemd/system");
  await dir("usr/share/zoneinfo");
  if (options.immutable) await dir("var/lib/extensions");

  await file("proc/sys/net/ipv4/ip_forward", "0\n");
  await file("proc/sys/vm/overcommit_memory", "0\n");
  await file("proc/sys/vm/swappiness", "60\n");
  await file("proc/sys/kernel/panic", "0\n");
  await file("proc/sys/kernel/panic_on_oops", "0\n");
  await file("proc/modules", "overlay 217088 0 - Live 0x0000000000000000\n");
  await file("proc/swaps", "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n");
  await dir("sys/module/overlay");
  await file("sys/fs/cgroup/cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc\n");
  await file(
    `lib/modules/${release()}/modules.dep`,
    "kernel/fs/overlayfs/overlay.ko:\nkernel/net/bridge/br_netfilter.ko: kernel/net/bridge/bridge.ko\nkernel/net/bridge/bridge.ko:\n",
  );
  await file("run/fakehost/active", "");
  await file("run/fakehost/sysext", "");
  return root;
}
