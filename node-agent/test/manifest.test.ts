import { lstat, readdir, readFile, rm, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { RecordingHostCommands } from "../src/host-commands.js";
import { digestOf, Manifest } from "../src/manifest.js";
import { resetAll } from "../src/reset.js";
import { runStep } from "../src/run-step.js";
import { fakeHostScript } from "./support-host/fake-host.js";
import { depsFor, sign } from "./support-host/plan.js";
import { createSandbox } from "./support-host/sandbox.js";
import { treeDiff, treeListing } from "./support-host/tree-hash.js";

const roots: string[] = [];
afterEach(async () => {
  for (const r of roots.splice(0)) await rm(r, { recursive: true, force: true });
});
async function sandbox() {
  const root = await createSandbox();
  roots.push(root);
  return root;
}
const stateDir = (root: string) => path.join(root, "var/lib/flexnode");

describe("the applied-state manifest", () => {
  it("is empty when absent, and opening it creates nothing", async () => {
    const root = await sandbox();
    const before = await treeListing(root);
    const m = await Manifest.open(root);
    expect(m.changes).toEqual([]);
    expect(m.digest()).toBe(digestOf([]));
    expect(m.digest()).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(await treeListing(root)).toEqual(before);
  });

  it("is written atomically, private, and keeps a target's first record only", async () => {
    const root = await sandbox();
    const m = await Manifest.open(root);
    await m.record("s1", { type: "module", name: "br_netfilter" }, { type: "directory", path: "/opt/flexnode" });
    await m.record("s2", { type: "module", name: "br_netfilter" }, { type: "sysctl", name: "net.ipv4.ip_forward", prior: "0" });
    expect(m.changes.map((c) => `${c.stepId} ${c.key}`)).toEqual(["s1 module:br_netfilter", "s1 directory:/opt/flexnode", "s2 sysctl:net.ipv4.ip_forward"]);
    const file = path.join(stateDir(root), "manifest.json");
    expect((await lstat(file)).mode & 0o777).toBe(0o600);
    expect((await lstat(path.join(stateDir(root), "prior"))).mode & 0o777).toBe(0o700);
    expect((await readdir(stateDir(root))).filter((n) => n.includes("tmp"))).toEqual([]);
    const reopened = await Manifest.open(root);
    expect(reopened.changes).toEqual(m.changes);
    expect(reopened.digest()).toBe(m.digest());
  });

  it("has a digest over a canonical encoding: layout and key order on disk do not change it", async () => {
    const root = await sandbox();
    const m = await Manifest.open(root);
    await m.record(
      "s1",
      { type: "sysctl", name: "vm.overcommit_memory", prior: "0" },
      { type: "unit", unit: "kubelet.service", action: "started", prior: "inactive" },
    );
    const file = path.join(stateDir(root), "manifest.json");
    const json = JSON.parse(await readFile(file, "utf8")) as { version: number; changes: Record<string, unknown>[] };
    const shuffled = { changes: json.changes.map((c) => Object.fromEntries(Object.entries(c).reverse())), version: json.version };
    await writeFile(file, JSON.stringify(shuffled));
    expect((await Manifest.open(root)).digest()).toBe(m.digest());
    await m.record("s2", { type: "module", name: "overlay" });
    expect((await Manifest.open(root)).digest()).not.toBe(digestOf(json.changes as never));
  });

  it.each([
    ["not JSON", "{"],
    ["an unknown change type", JSON.stringify({ version: 1, changes: [{ stepId: "s", key: "k", type: "shell", command: "rm -rf /" }] })],
    ["a newer version", JSON.stringify({ version: 2, changes: [] })],
  ])("that is %s fails steps and reset with manifest_corrupt and is never overwritten", async (_what, content) => {
    const root = await sandbox();
    const file = path.join(stateDir(root), "manifest.json");
    await writeFile(file, content);
    const host = new RecordingHostCommands(fakeHostScript(root));
    const deps = depsFor(root, host);
    const result = await runStep(
      sign({ stepId: "k", kind: "kernelModules", params: { modules: ["br_netfilter"], persistFile: "/etc/modules-load.d/flexnode.conf" } }),
      deps,
    );
    expect(result).toMatchObject({ outcome: "failed", error: { code: "manifest_corrupt", retryable: false } });
    expect(result.manifestDigest).toMatch(/^sha256:[0-9a-f]{64}$/);
    const reset = await runStep(sign({ stepId: "reset", kind: "reset", params: { scope: "all" } }), deps);
    expect(reset).toMatchObject({ outcome: "failed", error: { code: "manifest_corrupt" } });
    expect(host.calls).toEqual([]);
    expect(await readFile(file, "utf8")).toBe(content);
  });

  it("is write-ahead: changes recorded but never made (a crash right after the record) undo cleanly", async () => {
    const root = await sandbox();
    const before = await treeListing(root);
    const m = await Manifest.open(root);
    const blob = await m.storeBlob(Buffer.from("prior content that was never replaced\n"));
    await m.record(
      "crashed",
      { type: "directory", path: "/opt/flexnode" },
      { type: "file", path: "/opt/flexnode/bin/kubelet", prior: { state: "absent" } },
      { type: "file", path: "/etc/hostname", prior: { state: "file", blob, mode: 0o644, uid: 0, gid: 0 } },
      { type: "module", name: "br_netfilter" },
      { type: "sysctl", name: "net.ipv4.ip_forward", prior: "0" },
      { type: "unit", unit: "kubelet.service", action: "enabled", prior: "disabled" },
      {
        type: "extracted",
        destination: "/opt/cni/bin",
        archiveSha256: "a".repeat(64),
        entries: [{ path: "/opt/cni/bin/bridge", kind: "file", prior: { state: "absent" } }],
      },
      { type: "refresh", program: "sysext" },
    );
    const host = new RecordingHostCommands(fakeHostScript(root));
    const report = await resetAll(depsFor(root, host));
    expect(report.failed).toEqual([]);
    expect(report.undone).toHaveLength(8);
    // /etc/hostname is put back to what the record says it was: the record is the truth about the prior state.
    expect(await readFile(path.join(root, "etc/hostname"), "utf8")).toBe("prior content that was never replaced\n");
    await writeFile(path.join(root, "etc/hostname"), "edge-1\n");
    expect(treeDiff(before, await treeListing(root))).toEqual([]);
    // Nothing was loaded or enabled, so nothing is unloaded or disabled.
    expect(host.lines().filter((l) => /modprobe|disable|sysctl -w/.test(l))).toEqual([]);
  });

  it("keeps prior contents only while a change refers to them", async () => {
    const root = await sandbox();
    const m = await Manifest.open(root);
    const a = await m.storeBlob(Buffer.from("a"));
    await m.storeBlob(Buffer.from("orphan: stored, then the agent died before recording"));
    await m.record("s", { type: "file", path: "/etc/a", prior: { state: "file", blob: a, mode: 0o644, uid: 0, gid: 0 } });
    expect(await m.orphanBlobs()).toHaveLength(1);
    await resetAll(depsFor(root, new RecordingHostCommands(fakeHostScript(root))));
    await expect(lstat(path.join(stateDir(root), "prior"))).rejects.toThrow(/ENOENT/);
    await expect(lstat(path.join(stateDir(root), "manifest.json"))).rejects.toThrow(/ENOENT/);
  });
});
