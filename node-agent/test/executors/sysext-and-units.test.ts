import { lstat, mkdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { declaredDirectories } from "../../src/executors/unit-directories.js";
import { startArtifactServer, type ArtifactServer } from "../support-host/artifact-server.js";
import { activeUnits } from "../support-host/fake-host.js";
import { buildPayloads, sha256, type Payloads } from "../support-host/payloads.js";
import { hostUnderTest, type HostUnderTest } from "../support-host/step.js";
import { treeDiff } from "../support-host/tree-hash.js";

let server: ArtifactServer;
let payloads: Payloads;
const roots: string[] = [];
beforeAll(async () => {
  server = await startArtifactServer();
  payloads = await buildPayloads(0.25);
  server.put("containerd.raw", payloads.containerdSysext);
});
afterAll(() => server.close());
afterEach(async () => {
  for (const r of roots.splice(0)) await rm(r, { recursive: true, force: true });
});
async function sandbox(immutable = true): Promise<HostUnderTest> {
  const h = await hostUnderTest({ immutable, ca: server.ca });
  roots.push(h.root);
  return h;
}
const sysext = () => ({
  name: "containerd",
  artifact: { url: server.url("containerd.raw"), sha256: sha256(payloads.containerdSysext) },
  directory: "/var/lib/extensions",
  refresh: true,
});

describe("installSysext", () => {
  it("places the verified image, refreshes, converges without downloading, and reset removes it and refreshes", async () => {
    const h = await sandbox();
    const before = server.requests.length;
    expect(await h.run("installSysext", sysext())).toMatchObject({
      outcome: "succeeded",
      output: { placed: true, image: "/var/lib/extensions/containerd.raw" },
    });
    expect(sha256(await readFile(path.join(h.root, "var/lib/extensions/containerd.raw")))).toBe(sha256(payloads.containerdSysext));
    expect(await readFile(path.join(h.root, "run/fakehost/sysext"), "utf8")).toBe("containerd\n");
    expect(h.host.lines()).toEqual(["systemd-sysext refresh"]);
    expect(await h.run("installSysext", sysext())).toMatchObject({ outcome: "succeeded", output: { placed: false } });
    expect(server.requests.length - before).toBe(1);
    // Refreshed again: a crash between placing and refreshing must still converge.
    expect(h.host.lines()).toEqual(["systemd-sysext refresh", "systemd-sysext refresh"]);

    await h.reset();
    expect(h.host.lines().at(-1)).toBe("systemd-sysext refresh");
    expect(treeDiff(h.original, await h.tree())).toEqual([]);
  });

  it("a wrong digest places nothing and does not refresh", async () => {
    const h = await sandbox();
    const result = await h.run("installSysext", { ...sysext(), artifact: { url: server.url("containerd.raw"), sha256: "f".repeat(64) } });
    expect(result).toMatchObject({ outcome: "failed", error: { code: "artifact_digest_mismatch" } });
    expect(h.host.calls).toEqual([]);
    await expect(lstat(path.join(h.root, "var/lib/extensions/containerd.raw"))).rejects.toThrow(/ENOENT/);
  });

  it("refuses an image directory under /usr and names that are paths", async () => {
    const h = await sandbox();
    for (const params of [
      { ...sysext(), directory: "/usr/lib/extensions" },
      { ...sysext(), name: "../../etc/x" },
      { ...sysext(), name: "a/b" },
    ]) {
      expect(await h.run("installSysext", params)).toMatchObject({ outcome: "failed", error: { code: "invalid_params" } });
    }
    expect(treeDiff(h.original, await h.tree())).toEqual([]);
  });
});

describe("systemdUnits", () => {
  const unit = "[Unit]\nDescription=x\n[Service]\nExecStart=/opt/flexnode/bin/x\n[Install]\nWantedBy=multi-user.target\n";
  async function withUnits(h: HostUnderTest, names: string[]) {
    for (const n of names) await writeFile(path.join(h.root, "etc/systemd/system", n), unit);
  }

  it("enables and starts what is not, converges, and reset stops and disables only that", async () => {
    const h = await sandbox(false);
    await withUnits(h, ["a.service", "b.service"]);
    // b is enabled and running before the agent: it must stay that way after reset.
    await symlink("/etc/systemd/system/b.service", path.join(h.root, "etc/systemd/system/multi-user.target.wants/b.service"));
    await writeFile(path.join(h.root, "run/fakehost/active"), "b.service\n");
    const original = await h.tree();
    const params = {
      daemonReload: true,
      units: [
        { name: "a.service", enable: true, start: true },
        { name: "b.service", enable: true, start: true },
      ],
    };
    expect(await h.run("systemdUnits", params)).toMatchObject({ outcome: "succeeded", output: { changed: ["enabled a.service", "started a.service"] } });
    expect(activeUnits(h.root)).toEqual(["b.service", "a.service"]);
    expect(await h.run("systemdUnits", params)).toMatchObject({ outcome: "succeeded", output: { changed: [] } });

    const calls = h.host.calls.length;
    await h.reset();
    expect(
      h.host
        .lines()
        .slice(calls)
        .filter((l) => !/is-enabled/.test(l)),
    ).toEqual(["systemctl stop a.service", "systemctl disable a.service"]);
    expect(activeUnits(h.root)).toEqual(["b.service"]);
    expect(treeDiff(original, await h.tree())).toEqual([]);
  });

  it("stops and disables on request, and reset starts and enables again", async () => {
    const h = await sandbox(false);
    await withUnits(h, ["docker.service"]);
    await symlink("/etc/systemd/system/docker.service", path.join(h.root, "etc/systemd/system/multi-user.target.wants/docker.service"));
    await writeFile(path.join(h.root, "run/fakehost/active"), "docker.service\n");
    const original = await h.tree();
    expect(await h.run("systemdUnits", { units: [{ name: "docker.service", enable: false, start: false }] })).toMatchObject({
      outcome: "succeeded",
      output: { changed: ["disabled docker.service", "stopped docker.service"] },
    });
    expect(activeUnits(h.root)).toEqual([]);
    await h.reset();
    expect(treeDiff(original, await h.tree())).toEqual([]);
  });

  it("a unit that is not installed fails the precondition and nothing changes", async () => {
    const h = await sandbox(false);
    await withUnits(h, ["a.service"]);
    const original = await h.tree();
    const result = await h.run("systemdUnits", {
      units: [
        { name: "a.service", enable: true, start: true },
        { name: "missing.service", enable: true, start: true },
      ],
    });
    expect(result).toMatchObject({ outcome: "failed", error: { code: "unit_not_found", retryable: false } });
    expect(h.host.lines().filter((l) => !/is-enabled/.test(l))).toEqual([]);
    expect(treeDiff(original, await h.tree())).toEqual([]);
  });

  it("a unit from a merged sysext image is found once the image is refreshed", async () => {
    const h = await sandbox(true);
    expect((await h.run("systemdUnits", { units: [{ name: "containerd.service", enable: true, start: true }] })).outcome).toBe("failed");
    expect((await h.run("installSysext", sysext(), "sysext")).outcome).toBe("succeeded");
    expect((await h.run("systemdUnits", { units: [{ name: "containerd.service", enable: true, start: true }] }, "units")).outcome).toBe("succeeded");
    expect(activeUnits(h.root)).toEqual(["containerd.service"]);
    await h.reset();
    expect(treeDiff(h.original, await h.tree())).toEqual([]);
  });

  it("records the state, cache and log directories a unit it starts declares, and reset removes them after stopping it", async () => {
    const h = await sandbox(false);
    const declaring = "[Service]\nExecStart=/opt/flexnode/bin/x\nStateDirectory=runtime runtime/sub\nCacheDirectory=runtime\nLogsDirectory=kept\n";
    await writeFile(path.join(h.root, "etc/systemd/system/runtime.service"), declaring);
    // A drop-in may reset a list (empty assignment) and add to it, as systemd applies it.
    await mkdir(path.join(h.root, "etc/systemd/system/runtime.service.d"), { recursive: true });
    await writeFile(path.join(h.root, "etc/systemd/system/runtime.service.d/10-more.conf"), "[Service]\nCacheDirectory=\nCacheDirectory=runtime-cache\n");
    await mkdir(path.join(h.root, "var/cache"), { recursive: true });
    // A directory that already exists is the host's, not the agent's: it stays.
    await mkdir(path.join(h.root, "var/log/kept"), { recursive: true });
    const original = await h.tree();
    expect(await declaredDirectories(h.root, "runtime.service")).toEqual([
      "/var/lib/runtime",
      "/var/lib/runtime/sub",
      "/var/cache/runtime-cache",
      "/var/log/kept",
    ]);

    expect((await h.run("systemdUnits", { units: [{ name: "runtime.service", start: true }] })).outcome).toBe("succeeded");
    // What systemd and the daemon then create and fill:
    for (const dir of ["var/lib/runtime/sub/images", "var/cache/runtime-cache", "var/log/kept"]) await mkdir(path.join(h.root, dir), { recursive: true });
    await writeFile(path.join(h.root, "var/lib/runtime/sub/images/layer"), "data");
    await writeFile(path.join(h.root, "var/log/kept/runtime.log"), "log");
    const applied = (await h.manifest()).changes.map((c) => `${c.type} ${"path" in c ? c.path : "unit" in c ? `${c.action} ${c.unit}` : ""}`);
    expect(applied).toEqual(["unit-directory /var/lib/runtime", "unit-directory /var/cache/runtime-cache", "unit started runtime.service"]);

    await h.reset();
    expect(activeUnits(h.root)).toEqual([]);
    // The unit's own directories go whole with what it filled them with; the host's directory keeps the unit's log.
    expect(treeDiff(original, await h.tree())).toEqual(["+ var/log/kept/runtime.log file 644 0:0 " + sha256(Buffer.from("log"))]);
  });

  it("a declared directory the agent made earlier in the plan is the unit's too; reset never removes it through a link or across a mount", async () => {
    const h = await sandbox(false);
    await writeFile(path.join(h.root, "etc/systemd/system/kubelet.service"), "[Service]\nExecStart=/opt/flexnode/bin/kubelet\nStateDirectory=kubelet\n");
    const original = await h.tree();
    // As the plan does: the bootstrap kubeconfig is written into /var/lib/kubelet before the kubelet starts.
    expect((await h.run("writeFiles", { files: [{ path: "/var/lib/kubelet/bootstrap-kubeconfig", content: "k", mode: "0600" }] }, "bootstrap")).outcome).toBe(
      "succeeded",
    );
    expect((await h.run("systemdUnits", { units: [{ name: "kubelet.service", start: true }] }, "kubelet")).outcome).toBe("succeeded");
    expect((await h.manifest()).changes.filter((c) => c.type === "unit-directory").map((c) => ("path" in c ? c.path : ""))).toEqual(["/var/lib/kubelet"]);
    // What the kubelet then writes: its client certificate, and a pod volume mounted below its directory.
    await mkdir(path.join(h.root, "var/lib/kubelet/pki"), { recursive: true });
    await writeFile(path.join(h.root, "var/lib/kubelet/pki/kubelet-client-current.pem"), "cert");
    await mkdir(path.join(h.root, "proc/self"), { recursive: true });
    await writeFile(
      path.join(h.root, "proc/self/mountinfo"),
      "25 1 8:1 / / rw - ext4 /dev/sda1 rw\n90 25 0:50 / /var/lib/kubelet/pods/p1/volumes/kubernetes.io~nfs/data rw - nfs4 srv:/data rw\n",
    );
    expect((await h.reset()).failed).toEqual([expect.objectContaining({ error: expect.stringContaining("has mounts in it") })]);
    expect(await readFile(path.join(h.root, "var/lib/kubelet/pki/kubelet-client-current.pem"), "utf8")).toBe("cert");

    // Unmounted, the next reset takes the whole directory: the failed undo stayed recorded.
    await writeFile(path.join(h.root, "proc/self/mountinfo"), "25 1 8:1 / / rw - ext4 /dev/sda1 rw\n");
    await h.reset();
    await rm(path.join(h.root, "proc/self"), { recursive: true });
    expect(treeDiff(original, await h.tree())).toEqual([]);
  });

  it("a reset stops the kubelet and its pods first, then unmounts their volumes deepest first, and the kubelet's directory goes", async () => {
    const h = await sandbox(false);
    await writeFile(path.join(h.root, "etc/systemd/system/kubelet.service"), "[Service]\nExecStart=/opt/flexnode/bin/kubelet\nStateDirectory=kubelet\n");
    const original = await h.tree();
    expect((await h.run("systemdUnits", { units: [{ name: "kubelet.service", start: true }] }, "kubelet")).outcome).toBe("succeeded");
    // A pod ran: its service-account token (a projected tmpfs) and a memory emptyDir with a mount inside it.
    const pod = "/var/lib/kubelet/pods/0d5c-41/volumes";
    const token = `${pod}/kubernetes.io~projected/kube-api-access-x`;
    const cache = `${pod}/kubernetes.io~empty-dir/cache`;
    const nested = `${cache}/sub`;
    for (const m of [token, nested]) await mkdir(path.join(h.root, m), { recursive: true });
    await mkdir(path.join(h.root, "proc/self"), { recursive: true });
    await writeFile(
      path.join(h.root, "proc/self/mountinfo"),
      [
        "25 1 8:1 / / rw - ext4 /dev/sda1 rw",
        `90 25 0:50 / ${token} rw - tmpfs tmpfs rw`,
        `91 25 0:51 / ${cache} rw - tmpfs tmpfs rw`,
        `92 91 0:52 / ${nested} rw - tmpfs tmpfs rw`,
      ]
        .map((l) => `${l}\n`)
        .join(""),
    );
    // Named as `systemd-escape --path --suffix=mount` names them.
    const units = {
      token: "var-lib-kubelet-pods-0d5c\\x2d41-volumes-kubernetes.io\\x7eprojected-kube\\x2dapi\\x2daccess\\x2dx.mount",
      cache: "var-lib-kubelet-pods-0d5c\\x2d41-volumes-kubernetes.io\\x7eempty\\x2ddir-cache.mount",
      nested: "var-lib-kubelet-pods-0d5c\\x2d41-volumes-kubernetes.io\\x7eempty\\x2ddir-cache-sub.mount",
    };
    await writeFile(path.join(h.root, "run/fakehost/mount-units"), `${units.token} ${token}\n${units.cache} ${cache}\n${units.nested} ${nested}\n`);
    const before = h.host.calls.length;

    expect((await h.reset()).failed).toEqual([]);
    const released = h.host.lines().slice(before, before + 5);
    expect(released.slice(0, 2)).toEqual(["systemctl stop kubelet.service", "systemctl stop kubepods.slice"]);
    // The mount inside the emptyDir goes before the emptyDir itself.
    expect(released.slice(2)).toEqual(
      expect.arrayContaining([`systemctl stop ${units.token}`, `systemctl stop ${units.cache}`, `systemctl stop ${units.nested}`]),
    );
    expect(released.indexOf(`systemctl stop ${units.nested}`)).toBeLessThan(released.indexOf(`systemctl stop ${units.cache}`));
    await expect(lstat(path.join(h.root, "var/lib/kubelet"))).rejects.toMatchObject({ code: "ENOENT" });
    await rm(path.join(h.root, "proc/self"), { recursive: true });
    await rm(path.join(h.root, "run/fakehost/mount-units"));
    expect(treeDiff(original, await h.tree())).toEqual([]);
  });

  it("names mount units as systemd-escape does", async () => {
    const { mountUnitName } = await import("../../src/release-workloads.js");
    const { execFileSync } = await import("node:child_process");
    const paths = ["/", "/var/lib/kubelet/pods/0d5c-41/volumes/kubernetes.io~projected/kube-api-access-x", "/var/lib/a b/.hidden/ü", "/var//lib/x/"];
    // As systemd-escape 252 prints them (Debian 12), so the cases hold where no systemd is installed too.
    const expected = [
      "-.mount",
      "var-lib-kubelet-pods-0d5c\\x2d41-volumes-kubernetes.io\\x7eprojected-kube\\x2dapi\\x2daccess\\x2dx.mount",
      "var-lib-a\\x20b-.hidden-\\xc3\\xbc.mount",
      "var-lib-x.mount",
    ];
    expect(paths.map(mountUnitName)).toEqual(expected);
    // The real systemd-escape, where this machine has systemd (CI does).
    let escape: ((p: string) => string) | undefined;
    try {
      execFileSync("systemd-escape", ["--version"], { stdio: "ignore" });
      escape = (p) => execFileSync("systemd-escape", ["--path", "--suffix=mount", p], { encoding: "utf8" }).trim();
    } catch {
      escape = undefined;
    }
    if (escape) for (const p of paths) expect(mountUnitName(p)).toBe(escape(p));
  });

  it("reads no directories from a masked unit or one that declares none", async () => {
    const h = await sandbox(false);
    await symlink("/dev/null", path.join(h.root, "etc/systemd/system/masked.service"));
    await writeFile(
      path.join(h.root, "etc/systemd/system/plain.service"),
      "[Unit]\nStateDirectory=not-in-service-section\n[Service]\nExecStart=/x\nStateDirectory=../escape /abs\n",
    );
    expect(await declaredDirectories(h.root, "masked.service")).toEqual([]);
    expect(await declaredDirectories(h.root, "plain.service")).toEqual([]);
    expect(await declaredDirectories(h.root, "absent.service")).toEqual([]);
  });

  it("refuses unit names that are not unit names", async () => {
    const h = await sandbox(false);
    // "-H.service" would reach systemctl as its --host option.
    for (const name of ["../../etc/passwd", "kubelet", "a.service; reboot", "-H.service"]) {
      expect(await h.run("systemdUnits", { units: [{ name, start: true }] }), name).toMatchObject({ outcome: "failed", error: { code: "invalid_params" } });
    }
    expect(h.host.calls).toEqual([]);
  });
});
