import { readFile, rm } from "node:fs/promises";
import * as path from "node:path";
import type { JsonObject } from "../../../contract/json.js";
import { afterEach, describe, expect, it } from "vitest";
import { RecordingHostCommands } from "../../src/host-commands.js";
import { resetAll } from "../../src/reset.js";
import { runStep } from "../../src/run-step.js";
import { fakeHostScript } from "../support-host/fake-host.js";
import { depsFor, sign } from "../support-host/plan.js";
import { hostUnderTest, type HostUnderTest } from "../support-host/step.js";
import { treeDiff } from "../support-host/tree-hash.js";

const roots: string[] = [];
afterEach(async () => {
  for (const r of roots.splice(0)) await rm(r, { recursive: true, force: true });
});
async function sandbox(): Promise<HostUnderTest> {
  const h = await hostUnderTest();
  roots.push(h.root);
  return h;
}
const proc = (h: HostUnderTest, name: string) => readFile(path.join(h.root, "proc/sys", ...name.split(".")), "utf8");

const modules = { modules: ["overlay", "br_netfilter"], persistFile: "/etc/modules-load.d/flexnode.conf" };
const sysctl = {
  dropIn: "/etc/sysctl.d/99-flexnode-kubernetes.conf",
  settings: { "net.ipv4.ip_forward": "1", "vm.overcommit_memory": "1", "vm.swappiness": "60" },
};

describe("kernelModules", () => {
  it("loads only what is not loaded or built in, persists the list, converges, and reset unloads only that", async () => {
    const h = await sandbox();
    const first = await h.run("kernelModules", modules);
    expect(first).toMatchObject({ outcome: "succeeded", output: { loaded: ["br_netfilter"] } });
    expect(h.host.lines()).toEqual(["modprobe br_netfilter"]);
    expect(await readFile(path.join(h.root, "etc/modules-load.d/flexnode.conf"), "utf8")).toContain("\noverlay\nbr_netfilter\n");
    const second = await h.run("kernelModules", modules);
    expect(second).toMatchObject({ outcome: "succeeded", output: { loaded: [] } });
    expect(h.host.lines()).toEqual(["modprobe br_netfilter"]);

    await h.reset();
    // overlay was there before the agent: only br_netfilter is unloaded.
    expect(h.host.lines()).toEqual(["modprobe br_netfilter", "modprobe -r br_netfilter"]);
    expect(treeDiff(h.original, await h.tree())).toEqual([]);
  });

  it("fails retryably when modprobe fails, and the recorded change still undoes cleanly", async () => {
    const h = await sandbox();
    const result = await h.run("kernelModules", { modules: ["no_such_module"], persistFile: "/etc/modules-load.d/flexnode.conf" });
    expect(result).toMatchObject({ outcome: "failed", error: { code: "host_command_failed", retryable: true } });
    expect(result.outcome === "failed" && result.error.message).toContain("not found in directory");
    // Recorded before modprobe ran; the module never loaded, so undo has nothing to unload.
    expect((await h.manifest()).changes.map((c) => c.key)).toContain("module:no_such_module");
    const report = await h.reset();
    expect(report.failed).toEqual([]);
    expect(h.host.lines().filter((l) => l.startsWith("modprobe -r"))).toEqual([]);
    expect(treeDiff(h.original, await h.tree())).toEqual([]);
  });

  it("refuses bad params before any change", async () => {
    const h = await sandbox();
    for (const params of [
      { modules: ["overlay; rm -rf /"], persistFile: "/etc/modules-load.d/flexnode.conf" },
      // Would reach modprobe as its --remove option.
      { modules: ["-r"], persistFile: "/etc/modules-load.d/flexnode.conf" },
      { modules: ["overlay"], persistFile: "/etc/flexnode.conf" },
      { modules: [], persistFile: "/etc/modules-load.d/flexnode.conf" },
      { modules: ["overlay"] },
    ] as JsonObject[]) {
      expect(await h.run("kernelModules", params)).toMatchObject({ outcome: "failed", error: { code: "invalid_params" } });
    }
    expect(h.host.calls).toEqual([]);
    expect(treeDiff(h.original, await h.tree())).toEqual([]);
  });
});

describe("sysctl", () => {
  it("writes the drop-in, applies it with sysctl -p, converges, and reset restores file and values", async () => {
    const h = await sandbox();
    const first = await h.run("sysctl", sysctl);
    // vm.swappiness already had the value: not recorded, not counted as changed.
    expect(first).toMatchObject({ outcome: "succeeded", output: { changed: ["net.ipv4.ip_forward", "vm.overcommit_memory"] } });
    expect(h.host.lines()).toEqual(["sysctl -p /etc/sysctl.d/99-flexnode-kubernetes.conf"]);
    expect(await proc(h, "net.ipv4.ip_forward")).toBe("1\n");
    expect(await h.run("sysctl", sysctl)).toMatchObject({ outcome: "succeeded", output: { changed: [] } });
    expect(h.host.calls).toHaveLength(1);

    await h.reset();
    expect(h.host.lines().slice(1).sort()).toEqual(["sysctl -w net.ipv4.ip_forward=0", "sysctl -w vm.overcommit_memory=0"]);
    expect(treeDiff(h.original, await h.tree())).toEqual([]);
  });

  it("after the kernel module that owns them: values appear with the module, and go with it on reset", async () => {
    const h = await sandbox();
    expect((await h.run("kernelModules", modules, "mods")).outcome).toBe("succeeded");
    const bridge = { dropIn: sysctl.dropIn, settings: { "net.bridge.bridge-nf-call-iptables": "1" } };
    expect(await h.run("sysctl", bridge, "sysctl")).toMatchObject({ outcome: "succeeded", output: { changed: ["net.bridge.bridge-nf-call-iptables"] } });
    expect(await proc(h, "net.bridge.bridge-nf-call-iptables")).toBe("1\n");
    await h.reset();
    expect(treeDiff(h.original, await h.tree())).toEqual([]);
  });

  it("fails when sysctl -p does, retryably, and reset still restores the drop-in", async () => {
    const h = await sandbox();
    // Without br_netfilter the net.bridge keys do not exist, exactly as on a host.
    const result = await h.run("sysctl", { dropIn: sysctl.dropIn, settings: { "net.bridge.bridge-nf-call-iptables": "1" } });
    expect(result).toMatchObject({ outcome: "failed", error: { code: "host_command_failed", retryable: true } });
    await h.reset();
    expect(treeDiff(h.original, await h.tree())).toEqual([]);
  });

  it("refuses a drop-in outside /etc/sysctl.d, a value with a newline and a bad name, before any change", async () => {
    const h = await sandbox();
    for (const params of [
      { dropIn: "/etc/sysctl.conf", settings: { "net.ipv4.ip_forward": "1" } },
      { dropIn: "/usr/lib/sysctl.d/99-x.conf", settings: { "net.ipv4.ip_forward": "1" } },
      { dropIn: sysctl.dropIn, settings: { "net.ipv4.ip_forward": "1\nkernel.modules_disabled = 1" } },
      { dropIn: sysctl.dropIn, settings: { "../../etc/shadow": "1" } },
      { dropIn: sysctl.dropIn, settings: {} },
    ] as JsonObject[]) {
      expect(await h.run("sysctl", params)).toMatchObject({ outcome: "failed", error: { code: "invalid_params" } });
    }
    expect(h.host.calls).toEqual([]);
    expect(treeDiff(h.original, await h.tree())).toEqual([]);
  });

  it("a value changed again by someone else after the step is put back to the value from before the agent", async () => {
    const h = await sandbox();
    await h.run("sysctl", sysctl);
    const other = new RecordingHostCommands(fakeHostScript(h.root));
    await runStep(
      sign({ stepId: "x", kind: "sysctl", params: { dropIn: "/etc/sysctl.d/50-other.conf", settings: { "net.ipv4.ip_forward": "0" } } }),
      depsFor(h.root, other),
    );
    await resetAll(depsFor(h.root, other));
    expect(await proc(h, "net.ipv4.ip_forward")).toBe("0\n");
    expect(treeDiff(h.original, await h.tree())).toEqual([]);
  });
});
