import { rm } from "node:fs/promises";
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

const steps = [
  sign({ stepId: "kernel-modules", kind: "kernelModules", params: { modules: ["overlay", "br_netfilter"], persistFile: "/etc/modules-load.d/flexnode.conf" } }),
  sign({ stepId: "files", kind: "writeFiles", params: { files: [{ path: "/etc/flexnode/kubelet/config.yaml", mode: "0644", content: "x\n" }] } }),
];

describe("reset", () => {
  it("keeps what it could not undo recorded, reports it, and undoes it on the next reset", async () => {
    const root = await createSandbox();
    roots.push(root);
    const original = await treeListing(root);
    const script = fakeHostScript(root);
    let moduleBusy = true;
    // br_netfilter in use (by a running kube-proxy, say): modprobe -r fails until it is not.
    const host = new RecordingHostCommands((program, args) => (moduleBusy && program === "modprobe" && args[0] === "-r" ? { code: 1, stdout: "", stderr: "modprobe: FATAL: Module br_netfilter is in use." } : script(program, args)));
    const deps = depsFor(root, host);
    for (const s of steps) expect((await runStep(s, deps)).outcome).toBe("succeeded");

    const first = await runStep(sign({ stepId: "reset", kind: "reset", params: { scope: "all" } }), deps);
    expect(first).toMatchObject({ outcome: "failed", error: { code: "reset_incomplete", retryable: true } });
    expect(first.outcome === "failed" && first.error.message).toContain("Module br_netfilter is in use");
    const left = await Manifest.open(root);
    expect(left.changes.map((c) => c.key)).toEqual(["module:br_netfilter"]);
    expect(first.manifestDigest).toBe(left.digest());
    expect(first.manifestDigest).not.toBe(digestOf([]));

    moduleBusy = false;
    const second = await resetAll(deps);
    expect(second).toMatchObject({ failed: [], undone: [{ stepId: "kernel-modules", change: "kernel module br_netfilter (loaded)" }], manifestDigest: digestOf([]) });
    expect(treeDiff(original, await treeListing(root))).toEqual([]);

    const calls = host.calls.length;
    const third = await runStep(sign({ stepId: "reset", kind: "reset", params: {} }), deps);
    expect(third).toMatchObject({ outcome: "succeeded", output: { undone: 0 }, manifestDigest: digestOf([]) });
    expect(host.calls.length).toBe(calls);
    expect(treeDiff(original, await treeListing(root))).toEqual([]);
  });
});
