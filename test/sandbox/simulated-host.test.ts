/** The sandbox's simulated host: the kernel and systemd model the agent's executors read back, and the kubelet. */
import { mkdtemp, mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { KubeEmulator } from "../kube-emulator/index.js";
import { seedHostRoot, treeSnapshot } from "./sandbox-root.js";
import { SimulatedHost } from "./simulated-host.js";

let root: string;
beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), "flexnode-simhost-"));
  await seedHostRoot(root, { hostname: "Edge-7", immutable: true });
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const read = (p: string) => readFile(path.join(root, p), "utf8");
const exists = (p: string) =>
  stat(path.join(root, p)).then(
    () => true,
    () => false,
  );

describe("SimulatedHost", () => {
  it("loads and unloads modules (and br_netfilter's sysctls), applies and restores sysctls, leaving the tree as it was", async () => {
    const host = new SimulatedHost({ root, hostname: "edge-7", kube: new KubeEmulator() });
    const before = await treeSnapshot(root);
    expect((await host.run("modprobe", ["br_netfilter"])).code).toBe(0);
    expect(await exists("/sys/module/br_netfilter")).toBe(true);
    expect(await read("/proc/sys/net/bridge/bridge-nf-call-iptables")).toBe("1\n");
    expect(await read("/proc/modules")).toContain("br_netfilter ");
    await mkdir(path.join(root, "etc/sysctl.d"), { recursive: true });
    await writeFile(path.join(root, "etc/sysctl.d/99-x.conf"), "# comment\nnet.ipv4.ip_forward = 1\nvm.overcommit_memory=1\n");
    expect(await host.run("sysctl", ["-p", "/etc/sysctl.d/99-x.conf"])).toEqual({
      code: 0,
      stdout: "net.ipv4.ip_forward = 1\nvm.overcommit_memory = 1\n",
      stderr: "",
    });
    expect(await read("/proc/sys/net/ipv4/ip_forward")).toBe("1\n");
    expect((await host.run("sysctl", ["-n", "vm.overcommit_memory"])).stdout).toBe("1\n");
    expect((await host.run("sysctl", ["-n", "no.such.key"])).code).toBe(255);

    await rm(path.join(root, "etc/sysctl.d/99-x.conf"));
    await host.run("sysctl", ["-w", "net.ipv4.ip_forward=0"]);
    await host.run("sysctl", ["-w", "vm.overcommit_memory=0"]);
    await host.run("modprobe", ["-r", "br_netfilter"]);
    expect((await treeSnapshot(root)).entries).toEqual(before.entries);
  });

  it("refuses units without a unit file, and knows the units a merged sysext image ships", async () => {
    const host = new SimulatedHost({ root, hostname: "edge-7", kube: new KubeEmulator() });
    expect(await host.run("systemctl", ["is-enabled", "containerd.service"])).toEqual({ code: 1, stdout: "not-found\n", stderr: "" });
    expect((await host.run("systemctl", ["start", "containerd.service"])).code).toBe(5);
    await mkdir(path.join(root, "var/lib/extensions"), { recursive: true });
    await writeFile(path.join(root, "var/lib/extensions/containerd.raw"), "FLEXNODE-SANDBOX-SYSEXT\nname=containerd\nunits=containerd.service\n");
    expect((await host.run("systemctl", ["is-enabled", "containerd.service"])).stdout).toBe("not-found\n");
    await host.run("systemd-sysext", ["refresh"]);
    expect(await host.run("systemctl", ["is-enabled", "containerd.service"])).toEqual({ code: 1, stdout: "disabled\n", stderr: "" });
    await host.run("systemctl", ["enable", "--now", "containerd.service"]);
    expect(await host.run("systemctl", ["is-active", "containerd.service"])).toEqual({ code: 0, stdout: "active\n", stderr: "" });
    await host.run("systemctl", ["disable", "--now", "containerd.service"]);
    expect([host.activeUnits(), host.enabledUnits()]).toEqual([[], []]);
    expect(host.lines()[0]).toBe("systemctl is-enabled containerd.service");
  });

  it("answers injected failures instead of acting", async () => {
    const host = new SimulatedHost({
      root,
      hostname: "edge-7",
      kube: new KubeEmulator(),
      failures: [{ program: "modprobe", matches: (a) => a.includes("overlay"), result: { code: 1, stdout: "", stderr: "nope\n" } }],
    });
    expect((await host.run("modprobe", ["overlay"])).code).toBe(1);
    expect(await exists("/sys/module/overlay")).toBe(false);
    expect((await host.run("modprobe", ["br_netfilter"])).code).toBe(0);
  });

  it("starts a kubelet that joins only with a valid bootstrap token, under --hostname-override or the lowercased host name", async () => {
    const kube = new KubeEmulator();
    const unit = (extra: string) =>
      `[Service]\nExecStart=/usr/bin/kubelet --bootstrap-kubeconfig=/var/lib/kubelet/bootstrap-kubeconfig --cert-dir=/var/lib/kubelet/pki --node-labels=a=b,c=d${extra}\n`;
    await writeFile(path.join(root, "etc/systemd/system/kubelet.service"), unit(""));
    await mkdir(path.join(root, "var/lib/kubelet"), { recursive: true });
    await writeFile(path.join(root, "var/lib/kubelet/bootstrap-kubeconfig"), "users:\n- name: x\n  user:\n    token: abcdef.0123456789abcdef\n");
    const host = new SimulatedHost({ root, hostname: "Edge-7", kube });
    await host.run("systemctl", ["start", "kubelet.service"]);
    await host.settle();
    // No such token Secret in the cluster: the kubelet cannot bootstrap, and writes no certificate.
    expect(host.kubelet.map((e) => e.what)).toEqual(["started", "join-refused"]);
    expect(host.kubelet[0]!.detail).toContain("node edge-7");
    expect(await exists("/var/lib/kubelet/pki/kubelet-client-current.pem")).toBe(false);
    expect(kube.inspect().nodes).toEqual([]);

    await writeFile(path.join(root, "etc/systemd/system/kubelet.service"), unit(" --hostname-override=fn-1"));
    await host.run("systemctl", ["restart", "kubelet.service"]);
    await host.settle();
    expect(host.kubelet.at(-2)?.detail).toContain("node fn-1");
  });
});
