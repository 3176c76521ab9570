import { chown, lstat, mkdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import * as path from "node:path";
import type { JsonObject } from "../../../contract/json.js";
import { afterEach, describe, expect, it } from "vitest";
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

describe("writeFiles", () => {
  const files: { files: JsonObject[] } = {
    files: [
      { path: "/etc/flexnode/kubelet/config.yaml", mode: "0644", content: "kind: KubeletConfiguration\n" },
      { path: "/etc/sysctl.d/99-flexnode-kubernetes.conf", mode: "0600", content: "net.ipv4.ip_forward = 1\n", uid: 0, gid: 0 },
    ],
  };

  it("writes with mode and owner, converges on a rerun, and reset restores the prior content, mode and owner", async () => {
    const h = await sandbox();
    const first = await h.run("writeFiles", files);
    expect(first).toMatchObject({
      outcome: "succeeded",
      output: { written: ["/etc/flexnode/kubelet/config.yaml", "/etc/sysctl.d/99-flexnode-kubernetes.conf"], unchanged: 0 },
    });
    expect(await readFile(path.join(h.root, "etc/flexnode/kubelet/config.yaml"), "utf8")).toBe("kind: KubeletConfiguration\n");
    const replaced = await lstat(path.join(h.root, "etc/sysctl.d/99-flexnode-kubernetes.conf"));
    expect([replaced.mode & 0o7777, replaced.uid, replaced.gid]).toEqual([0o600, 0, 0]);
    const afterFirst = await h.tree();

    const second = await h.run("writeFiles", files);
    expect(second).toMatchObject({ outcome: "succeeded", output: { written: [], unchanged: 2 } });
    expect(second.manifestDigest).toBe(first.manifestDigest);
    expect(await h.tree()).toEqual(afterFirst);

    const report = await h.reset();
    expect(report.failed).toEqual([]);
    expect(report.undone.map((u) => u.change)).toEqual([
      "file /etc/sysctl.d/99-flexnode-kubernetes.conf (replaced file)",
      "file /etc/flexnode/kubelet/config.yaml (created)",
      "directory /etc/flexnode/kubelet (created)",
    ]);
    // Includes the seeded 0640 1000:1000 owner of the sysctl file.
    expect(treeDiff(h.original, await h.tree())).toEqual([]);
  });

  it("puts a replaced symlink back as a symlink", async () => {
    const h = await sandbox();
    await mkdir(path.join(h.root, "etc/kubernetes"), { recursive: true });
    await symlink("../hostname", path.join(h.root, "etc/kubernetes/node-name"));
    const original = await h.tree();
    expect((await h.run("writeFiles", { files: [{ path: "/etc/kubernetes/node-name", mode: "0644", content: "edge-1\n" }] })).outcome).toBe("succeeded");
    expect((await lstat(path.join(h.root, "etc/kubernetes/node-name"))).isFile()).toBe(true);
    await h.reset();
    expect(treeDiff(original, await h.tree())).toEqual([]);
  });

  it.each([
    ["/usr/bin/kubelet", "usr"],
    ["etc/relative", "absolute"],
    ["/etc/../usr/bin/x", '".."'],
    ["/home/user/.bashrc", "under /etc, /var, /opt"],
    ["/etc//double", "normalised"],
  ])("refuses %s before any change", async (bad, why) => {
    const h = await sandbox();
    const result = await h.run("writeFiles", {
      files: [
        { path: "/etc/flexnode/ok.conf", mode: "0644", content: "x" },
        { path: bad, mode: "0644", content: "x" },
      ],
    });
    expect(result).toMatchObject({ outcome: "failed", error: { code: "invalid_params", retryable: false } });
    expect(result.outcome === "failed" && result.error.message).toContain(why);
    expect(treeDiff(h.original, await h.tree())).toEqual([]);
  });

  it("refuses unknown fields, setuid modes and a path written twice", async () => {
    const h = await sandbox();
    for (const params of [
      { files: [{ path: "/etc/a", mode: "0644", content: "x", owner: "root" }] },
      { files: [{ path: "/etc/a", mode: "4755", content: "x" }] },
      {
        files: [
          { path: "/etc/a", mode: "0644", content: "x" },
          { path: "/etc/a", mode: "0644", content: "y" },
        ],
      },
      { files: [] },
    ]) {
      expect(await h.run("writeFiles", params)).toMatchObject({ outcome: "failed", error: { code: "invalid_params" } });
    }
    expect(treeDiff(h.original, await h.tree())).toEqual([]);
  });

  it("refuses to follow a symlink into /usr or out of the root, and changes nothing", async () => {
    const h = await sandbox();
    await symlink("/usr/lib", path.join(h.root, "etc/usrlink"));
    await symlink("../../../../../../../../tmp", path.join(h.root, "etc/outside"));
    const original = await h.tree();
    const intoUsr = await h.run("writeFiles", {
      files: [
        { path: "/etc/flexnode/ok.conf", mode: "0644", content: "x" },
        { path: "/etc/usrlink/evil.conf", mode: "0644", content: "x" },
      ],
    });
    expect(intoUsr).toMatchObject({ outcome: "failed", error: { code: "usr_write_refused", retryable: false } });
    expect(intoUsr.outcome === "failed" && intoUsr.error.message).toContain("/etc/usrlink/evil.conf resolves to it through a symlink");
    const escape = await h.run("writeFiles", { files: [{ path: "/etc/outside/evil.conf", mode: "0644", content: "x" }] });
    expect(escape).toMatchObject({ outcome: "failed", error: { code: "path_not_allowed" } });
    expect(treeDiff(original, await h.tree())).toEqual([]);
  });

  it("follows an absolute symlink the way the host would, inside the root", async () => {
    const h = await sandbox();
    // Fedora Silverblue and CoreOS: /opt is a symlink to var/opt.
    await mkdir(path.join(h.root, "var/opt"));
    await rm(path.join(h.root, "opt"), { recursive: true });
    await symlink("/var/opt", path.join(h.root, "opt"));
    const result = await h.run("writeFiles", { files: [{ path: "/opt/flexnode/marker", mode: "0644", content: "x" }] });
    expect(result.outcome).toBe("succeeded");
    expect(await readFile(path.join(h.root, "var/opt/flexnode/marker"), "utf8")).toBe("x");
    expect((await h.manifest()).changes.map((c) => c.key)).toEqual(["directory:/var/opt/flexnode", "file:/var/opt/flexnode/marker"]);
  });

  it("refuses to replace a directory with a file", async () => {
    const h = await sandbox();
    const result = await h.run("writeFiles", { files: [{ path: "/etc/flexnode", mode: "0644", content: "x" }] });
    expect(result).toMatchObject({ outcome: "failed", error: { code: "path_is_directory" } });
    expect(treeDiff(h.original, await h.tree())).toEqual([]);
  });

  it("restores a file the host changed again after the step, and keeps the first prior state across steps", async () => {
    const h = await sandbox();
    const conf = path.join(h.root, "etc/hostname");
    await h.run("writeFiles", { files: [{ path: "/etc/hostname", mode: "0644", content: "node-a\n" }] }, "first");
    await h.run("writeFiles", { files: [{ path: "/etc/hostname", mode: "0644", content: "node-b\n" }] }, "second");
    await writeFile(conf, "edited by hand\n");
    await chown(conf, 1234, 1234);
    expect((await h.manifest()).changes.filter((c) => c.type === "file")).toHaveLength(1);
    await h.reset();
    expect(treeDiff(h.original, await h.tree())).toEqual([]);
  });
});
