import { lstat, mkdir, readFile, readlink, rm, symlink, writeFile } from "node:fs/promises";
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
import { hashTree } from "./support-service/scratch-root.js";

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
    const host = new RecordingHostCommands((program, args) =>
      moduleBusy && program === "modprobe" && args[0] === "-r"
        ? { code: 1, stdout: "", stderr: "modprobe: FATAL: Module br_netfilter is in use." }
        : script(program, args),
    );
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
    expect(second).toMatchObject({
      failed: [],
      undone: [{ stepId: "kernel-modules", change: "kernel module br_netfilter (loaded)" }],
      manifestDigest: digestOf([]),
    });
    expect(treeDiff(original, await treeListing(root))).toEqual([]);

    const calls = host.calls.length;
    const third = await runStep(sign({ stepId: "reset", kind: "reset", params: {} }), deps);
    expect(third).toMatchObject({ outcome: "succeeded", output: { undone: 0 }, manifestDigest: digestOf([]) });
    expect(host.calls.length).toBe(calls);
    expect(treeDiff(original, await treeListing(root))).toEqual([]);
  });

  it("removes a created directory only once empty: an unrecorded file in it survives, and the directory is reported as left", async () => {
    const root = await createSandbox();
    roots.push(root);
    const log: string[] = [];
    const deps = depsFor(root, new RecordingHostCommands(fakeHostScript(root)), { log });
    const files = sign({
      stepId: "files",
      kind: "writeFiles",
      params: { files: [{ path: "/etc/flexnode/kubelet/config.yaml", mode: "0644", content: "x\n" }] },
    });
    expect((await runStep(files, deps)).outcome).toBe("succeeded");
    // Something else (an operator, kubelet) puts a file into the directory the agent created.
    const notes = path.join(root, "etc/flexnode/kubelet/operator-notes.txt");
    await writeFile(notes, "keep me\n");

    const result = await runStep(sign({ stepId: "reset", kind: "reset", params: { scope: "all" } }), deps);
    expect(result).toMatchObject({ outcome: "succeeded", output: { undone: 2, left: ["/etc/flexnode/kubelet"] } });
    expect(log.join("\n")).toMatch(/reset: left \/etc\/flexnode\/kubelet in place .*: not empty: .*operator-notes\.txt/);
    expect(await readFile(notes, "utf8")).toBe("keep me\n");
    await expect(lstat(path.join(root, "etc/flexnode/kubelet/config.yaml"))).rejects.toMatchObject({ code: "ENOENT" });
    // Its change is done with (the agent will never delete what it did not record), so the manifest is empty.
    expect((await Manifest.open(root)).changes).toEqual([]);
    expect(result.manifestDigest).toBe(digestOf([]));
  });

  it("never follows a parent swapped for a symlink: nothing is deleted through it, and the change stays recorded", async () => {
    const root = await createSandbox();
    roots.push(root);
    const deps = depsFor(root, new RecordingHostCommands(fakeHostScript(root)));
    const files = sign({ stepId: "files", kind: "writeFiles", params: { files: [{ path: "/opt/flexnode/conf/a.conf", mode: "0644", content: "x\n" }] } });
    expect((await runStep(files, deps)).outcome).toBe("succeeded");
    // The directory the agent created is swapped for a link to the sandbox's /etc, which has an a.conf of its own.
    const conf = path.join(root, "opt/flexnode/conf");
    await rm(conf, { recursive: true });
    await symlink("../../etc", conf);
    await mkdir(path.join(root, "etc"), { recursive: true });
    await writeFile(path.join(root, "etc/a.conf"), "precious\n");
    const etcBefore = await hashTree(path.join(root, "etc"));

    const report = await resetAll(deps);
    expect(await readFile(path.join(root, "etc/a.conf"), "utf8")).toBe("precious\n");
    expect(await hashTree(path.join(root, "etc"))).toBe(etcBefore);
    expect(report.failed).toEqual([
      {
        stepId: "files",
        change: "file /opt/flexnode/conf/a.conf (created)",
        error: expect.stringContaining("/opt/flexnode/conf is now a symbolic link (to ../../etc)"),
      },
    ]);
    expect(report.left.map((l) => l.path)).toEqual(["/opt/flexnode/conf", "/opt/flexnode"]);
    // The link itself is not the agent's either: it stays, and so does the record of the file, for a later reset.
    expect(await readlink(conf)).toBe("../../etc");
    expect((await Manifest.open(root)).changes.map((c) => c.key)).toEqual(["file:/opt/flexnode/conf/a.conf"]);
  });
});
