import { lstat, mkdir, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { downloadVerified } from "../../src/artifact-download.js";
import type { ArchiveLimits } from "../../src/ports.js";
import { startArtifactServer, type ArtifactServer } from "../support-host/artifact-server.js";
import { craftTarGz, type CraftedEntry } from "../support-host/crafted-tar.js";
import { buildPayloads, sha256, type Payloads } from "../support-host/payloads.js";
import { hostUnderTest, type HostUnderTest } from "../support-host/step.js";
import { treeDiff } from "../support-host/tree-hash.js";

let server: ArtifactServer;
let payloads: Payloads;
const roots: string[] = [];
beforeAll(async () => {
  server = await startArtifactServer();
  payloads = await buildPayloads();
  server.put("kubelet", payloads.kubelet);
  server.put("cni.tgz", payloads.cni);
  server.put("containerd.tgz", payloads.containerd);
});
afterAll(() => server.close());
afterEach(async () => {
  for (const r of roots.splice(0)) await rm(r, { recursive: true, force: true });
});
async function sandbox(o: { ca?: string | null; archiveLimits?: ArchiveLimits } = {}): Promise<HostUnderTest> {
  const h = await hostUnderTest({ ...(o.ca === null ? {} : { ca: o.ca ?? server.ca }), ...(o.archiveLimits ? { archiveLimits: o.archiveLimits } : {}) });
  roots.push(h.root);
  return h;
}
const requestsFor = (name: string) => server.requests.filter((r) => r.path === name);
const kubelet = () => ({ artifact: { url: server.url("kubelet"), sha256: sha256(payloads.kubelet) }, destination: "/opt/flexnode/bin/kubelet", mode: "0755" });
const cni = () => ({ artifact: { url: server.url("cni.tgz"), sha256: sha256(payloads.cni) }, destination: "/opt/cni/bin", unpack: "tar.gz" });

describe("fetchArtifact, one file", () => {
  it("downloads, verifies, places with its mode; a rerun downloads nothing; reset removes it", async () => {
    const h = await sandbox();
    const before = requestsFor("kubelet").length;
    expect(await h.run("fetchArtifact", kubelet())).toMatchObject({ outcome: "succeeded", output: { placed: true } });
    const placed = path.join(h.root, "opt/flexnode/bin/kubelet");
    expect(sha256(await readFile(placed))).toBe(sha256(payloads.kubelet));
    expect((await lstat(placed)).mode & 0o7777).toBe(0o755);
    // The download cache is emptied once the artifact is in place.
    expect(await readdir(path.join(h.root, "var/lib/flexnode/downloads"))).toEqual([]);
    expect(await h.run("fetchArtifact", kubelet())).toMatchObject({ outcome: "succeeded", output: { placed: false } });
    expect(requestsFor("kubelet").length - before).toBe(1);
    await h.reset();
    expect(treeDiff(h.original, await h.tree())).toEqual([]);
  });

  it("a sha256 mismatch fails with a stable code and places nothing", async () => {
    const h = await sandbox();
    const result = await h.run("fetchArtifact", { ...kubelet(), artifact: { url: server.url("kubelet"), sha256: "0".repeat(64) } });
    expect(result).toMatchObject({ outcome: "failed", error: { code: "artifact_digest_mismatch", retryable: false } });
    expect(result.outcome === "failed" && result.error.message).toContain(sha256(payloads.kubelet));
    await expect(lstat(path.join(h.root, "opt/flexnode/bin"))).rejects.toThrow(/ENOENT/);
    expect(await readdir(path.join(h.root, "var/lib/flexnode/downloads"))).toEqual([]);
    expect((await h.manifest()).changes).toEqual([]);
  });

  it("a download cut mid-way is taken up again from what the .part holds and yields the exact artifact", async () => {
    const h = await sandbox();
    const before = requestsFor("kubelet").length;
    server.cutNext("kubelet", 40_000);
    expect(await h.run("fetchArtifact", kubelet())).toMatchObject({ outcome: "succeeded" });
    const made = requestsFor("kubelet").slice(before);
    // The retry asks for the rest of what the .part holds, never more than the 40 000 bytes sent. How much was stored
    // is timing: Node's HTTP client drops what a response still buffers when its connection breaks, so on a busy
    // machine the .part can hold less (the exact resume is pinned by the next test, from a .part of known size).
    expect(made).toHaveLength(2);
    expect(made[0]).toEqual({ path: "kubelet", status: 200 });
    const resumedAt = made[1]!.range === undefined ? 0 : Number(/^bytes=(\d+)-$/.exec(made[1]!.range)?.[1]);
    expect(made[1]).toEqual(resumedAt === 0 ? { path: "kubelet", status: 200 } : { path: "kubelet", range: `bytes=${resumedAt}-`, status: 206 });
    expect(resumedAt).toBeLessThanOrEqual(40_000);
    expect(sha256(await readFile(path.join(h.root, "opt/flexnode/bin/kubelet")))).toBe(sha256(payloads.kubelet));
  });

  it("a .part left by a killed agent is resumed, not restarted", async () => {
    const h = await sandbox();
    const downloads = path.join(h.root, "var/lib/flexnode/downloads");
    await mkdir(downloads, { recursive: true });
    await writeFile(path.join(downloads, `${sha256(payloads.kubelet)}.part`), payloads.kubelet.subarray(0, 100_000));
    const before = requestsFor("kubelet").length;
    expect(await h.run("fetchArtifact", kubelet())).toMatchObject({ outcome: "succeeded" });
    expect(requestsFor("kubelet").slice(before)).toEqual([{ path: "kubelet", range: "bytes=100000-", status: 206 }]);
  });

  it("a corrupt .part is detected by the digest, discarded, and downloaded again in full", async () => {
    const h = await sandbox();
    const downloads = path.join(h.root, "var/lib/flexnode/downloads");
    await mkdir(downloads, { recursive: true });
    await writeFile(path.join(downloads, `${sha256(payloads.kubelet)}.part`), Buffer.alloc(1000, 7));
    expect(await h.run("fetchArtifact", kubelet())).toMatchObject({ outcome: "succeeded" });
    expect(sha256(await readFile(path.join(h.root, "opt/flexnode/bin/kubelet")))).toBe(sha256(payloads.kubelet));
  });

  it("does not trust the mirror without its CA, and refuses plain http in the params", async () => {
    const h = await sandbox({ ca: null });
    const untrusted = await h.run("fetchArtifact", kubelet());
    expect(untrusted).toMatchObject({ outcome: "failed", error: { code: "download_failed", retryable: false } });
    expect(untrusted.outcome === "failed" && untrusted.error.message).toMatch(/SELF_SIGNED|UNABLE_TO/);
    const http = await h.run("fetchArtifact", {
      ...kubelet(),
      artifact: { url: server.url("kubelet").replace("https:", "http:"), sha256: sha256(payloads.kubelet) },
    });
    expect(http).toMatchObject({ outcome: "failed", error: { code: "invalid_params" } });
    expect((await h.manifest()).changes).toEqual([]);
  });

  it("a missing artifact (404) fails without retrying forever", async () => {
    const h = await sandbox();
    const result = await h.run("fetchArtifact", { ...kubelet(), artifact: { url: server.url("nope"), sha256: sha256(payloads.kubelet) } });
    expect(result).toMatchObject({ outcome: "failed", error: { code: "download_failed", retryable: false } });
    expect(requestsFor("nope")).toHaveLength(1);
  });
});

describe("downloadVerified", () => {
  it("refuses an artifact larger than its limit and keeps nothing of it", async () => {
    const h = await sandbox();
    const download = downloadVerified({
      root: h.root,
      url: server.url("kubelet"),
      sha256: sha256(payloads.kubelet),
      ca: server.ca,
      log: () => undefined,
      maxBytes: 64 * 1024,
    });
    await expect(download).rejects.toMatchObject({ code: "download_failed", retryable: false, message: expect.stringContaining("larger than 65536 bytes") });
    expect(await readdir(path.join(h.root, "var/lib/flexnode/downloads"))).toEqual([]);
  });
});

describe("fetchArtifact, tar.gz", () => {
  it("unpacks over existing files, records each with its prior state, converges, and reset restores them", async () => {
    const h = await sandbox();
    expect(await h.run("fetchArtifact", cni())).toMatchObject({ outcome: "succeeded", output: { placed: true, entries: 4 } });
    const bin = path.join(h.root, "opt/cni/bin");
    expect((await readdir(bin)).sort()).toEqual(["bridge", "dhcp", "host-local", "loopback", "portmap"]);
    expect((await lstat(path.join(bin, "bridge"))).mode & 0o7777).toBe(0o755);
    expect(await readFile(path.join(bin, "loopback"), "utf8")).not.toContain("distro");
    const manifest = await h.manifest();
    const extracted = manifest.changes.find((c) => c.type === "extracted");
    expect(extracted?.type === "extracted" && extracted.entries.map((e) => `${e.path} ${e.kind} ${e.prior.state}`).sort()).toEqual([
      "/opt/cni/bin/bridge file absent",
      "/opt/cni/bin/host-local file absent",
      "/opt/cni/bin/loopback file file",
      "/opt/cni/bin/portmap file absent",
    ]);

    const afterFirst = await h.tree();
    const before = requestsFor("cni.tgz").length;
    expect(await h.run("fetchArtifact", cni())).toMatchObject({ outcome: "succeeded", output: { placed: false } });
    expect(requestsFor("cni.tgz").length).toBe(before);
    expect(await h.tree()).toEqual(afterFirst);

    await h.reset();
    expect(await readFile(path.join(bin, "loopback"), "utf8")).toContain("distro loopback plugin");
    expect(treeDiff(h.original, await h.tree())).toEqual([]);
  });

  it("a file removed from an unpacked archive is put back by a rerun", async () => {
    const h = await sandbox();
    await h.run("fetchArtifact", {
      artifact: { url: server.url("containerd.tgz"), sha256: sha256(payloads.containerd) },
      destination: "/opt/flexnode/containerd",
      unpack: "tar.gz",
    });
    const afterFirst = await h.tree();
    await rm(path.join(h.root, "opt/flexnode/containerd/bin/ctr"));
    expect(
      await h.run("fetchArtifact", {
        artifact: { url: server.url("containerd.tgz"), sha256: sha256(payloads.containerd) },
        destination: "/opt/flexnode/containerd",
        unpack: "tar.gz",
      }),
    ).toMatchObject({ outcome: "succeeded", output: { placed: true } });
    expect(await h.tree()).toEqual(afterFirst);
  });

  const evil: [string, CraftedEntry[]][] = [
    [
      "an absolute path",
      [
        { path: "ok", body: "x" },
        { path: "/etc/cron.d/evil", body: "x" },
      ],
    ],
    [
      "a .. path",
      [
        { path: "ok", body: "x" },
        { path: "../../../etc/evil", body: "x" },
      ],
    ],
    [
      "a symlink out of the destination",
      [
        { path: "ok", body: "x" },
        { path: "esc", type: "SymbolicLink", linkpath: "../../../usr/bin" },
      ],
    ],
    ["an absolute symlink", [{ path: "esc", type: "SymbolicLink", linkpath: "/usr/bin" }]],
    [
      "a file written through an archive symlink",
      [
        { path: "d", type: "SymbolicLink", linkpath: "sub" },
        { path: "sub/", type: "Directory", mode: 0o755 },
        { path: "d/x", body: "x" },
      ],
    ],
    ["a hard link to something outside", [{ path: "h", type: "Link", linkpath: "../../etc/shadow" }]],
    // Each link alone stays inside; followed, d/up is the destination, so esc is <destination>/../../etc.
    [
      "a two-link symlink chain out of the destination",
      [
        { path: "d/", type: "Directory", mode: 0o755 },
        { path: "d/up", type: "SymbolicLink", linkpath: ".." },
        { path: "esc", type: "SymbolicLink", linkpath: "d/up/../../etc" },
      ],
    ],
    // a -> b -> c/.. where c -> .. : the chain ends one level above the destination.
    [
      "a three-link symlink chain out of the destination",
      [
        { path: "s/a", type: "SymbolicLink", linkpath: "b" },
        { path: "s/b", type: "SymbolicLink", linkpath: "c/.." },
        { path: "s/c", type: "SymbolicLink", linkpath: ".." },
      ],
    ],
    [
      "a symlink loop",
      [
        { path: "l1", type: "SymbolicLink", linkpath: "l2/x" },
        { path: "l2", type: "SymbolicLink", linkpath: "l1/y" },
      ],
    ],
    ["a setuid binary", [{ path: "suid", body: "x", mode: 0o4755 }]],
    ["a device node", [{ path: "dev", type: "CharacterDevice" }]],
  ];
  it.each(evil)("refuses %s and places nothing", async (_what, entries) => {
    const h = await sandbox();
    const body = craftTarGz(entries);
    const name = `evil-${sha256(body).slice(0, 8)}.tgz`;
    server.put(name, body);
    const result = await h.run("fetchArtifact", { artifact: { url: server.url(name), sha256: sha256(body) }, destination: "/opt/evil", unpack: "tar.gz" });
    expect(result).toMatchObject({ outcome: "failed", error: { code: "unsafe_archive", retryable: false } });
    await expect(lstat(path.join(h.root, "opt/evil"))).rejects.toThrow(/ENOENT/);
    await h.reset();
    expect(treeDiff(h.original, await h.tree())).toEqual([]);
  });

  it.each([
    ["/var/tmp", "unsafe_archive"],
    ["/usr/bin", "usr_write_refused"],
  ])("refuses an entry that would land in %s through a symlink already on the host", async (target, code) => {
    const h = await sandbox();
    await rm(path.join(h.root, "opt/cni/bin/loopback"));
    await symlink(target, path.join(h.root, "opt/cni/bin/loopback"));
    const body = craftTarGz([{ path: "loopback/x", body: "x" }]);
    server.put("through.tgz", body);
    const original = await h.tree();
    const result = await h.run("fetchArtifact", {
      artifact: { url: server.url("through.tgz"), sha256: sha256(body) },
      destination: "/opt/cni/bin",
      unpack: "tar.gz",
    });
    expect(result).toMatchObject({ outcome: "failed", error: { code } });
    await h.reset();
    expect(treeDiff(original, await h.tree())).toEqual([]);
  });

  it("refuses a link that leaves through a symlink already in the destination, before unpacking", async () => {
    const h = await sandbox();
    await symlink("../../../etc", path.join(h.root, "opt/cni/bin/site-link"));
    const body = craftTarGz([{ path: "passwd", type: "SymbolicLink", linkpath: "site-link/passwd" }]);
    server.put("through-site-link.tgz", body);
    const original = await h.tree();
    const result = await h.run("fetchArtifact", {
      artifact: { url: server.url("through-site-link.tgz"), sha256: sha256(body) },
      destination: "/opt/cni/bin",
      unpack: "tar.gz",
    });
    expect(result).toMatchObject({ outcome: "failed", error: { code: "unsafe_archive", message: expect.stringContaining("site-link") } });
    expect((await h.manifest()).changes).toEqual([]);
    await h.reset();
    expect(treeDiff(original, await h.tree())).toEqual([]);
  });

  it("unpacks link chains that stay inside (a library's .so -> .so.1 -> .so.1.2)", async () => {
    const h = await sandbox();
    // Links before their targets: tar itself will not create a link whose target is an existing link.
    const body = craftTarGz([
      { path: "current", type: "SymbolicLink", linkpath: "lib/../lib/libfoo.so" },
      { path: "lib/libfoo.so", type: "SymbolicLink", linkpath: "libfoo.so.1" },
      { path: "lib/libfoo.so.1", type: "SymbolicLink", linkpath: "libfoo.so.1.2" },
      { path: "lib/libfoo.so.1.2", body: "ELF" },
    ]);
    server.put("chain-inside.tgz", body);
    const result = await h.run("fetchArtifact", {
      artifact: { url: server.url("chain-inside.tgz"), sha256: sha256(body) },
      destination: "/opt/flexnode/foo",
      unpack: "tar.gz",
    });
    expect(result).toMatchObject({ outcome: "succeeded", output: { placed: true } });
    expect(await readFile(path.join(h.root, "opt/flexnode/foo/current"), "utf8")).toBe("ELF");
    await h.reset();
    expect(treeDiff(h.original, await h.tree())).toEqual([]);
  });

  it.each([
    ["bytes", { maxUnpackedBytes: 1_000 }, "more than 1000 bytes"],
    ["entries", { maxEntries: 2 }, "more than 2 entries"],
  ])("refuses an archive past the agent's cap on unpacked %s, before unpacking anything", async (_what, archiveLimits, message) => {
    const h = await sandbox({ archiveLimits });
    const body = craftTarGz([
      { path: "a", body: "x".repeat(600) },
      { path: "b", body: "y".repeat(600) },
      { path: "c", body: "z" },
    ]);
    server.put(`big-${sha256(body).slice(0, 8)}.tgz`, body);
    const params = { artifact: { url: server.url(`big-${sha256(body).slice(0, 8)}.tgz`), sha256: sha256(body) }, destination: "/opt/big", unpack: "tar.gz" };
    const result = await h.run("fetchArtifact", params);
    expect(result).toMatchObject({ outcome: "failed", error: { code: "archive_too_large", retryable: false, message: expect.stringContaining(message) } });
    await expect(lstat(path.join(h.root, "opt/big"))).rejects.toThrow(/ENOENT/);
    expect((await h.manifest()).changes).toEqual([]);
    await h.reset();
    expect(treeDiff(h.original, await h.tree())).toEqual([]);
    // Within the caps the same archive unpacks.
    const roomy = await sandbox({ archiveLimits: { maxUnpackedBytes: 1_201, maxEntries: 3 } });
    expect(await roomy.run("fetchArtifact", params)).toMatchObject({ outcome: "succeeded", output: { entries: 3 } });
  });

  it("refuses mode together with unpack", async () => {
    const h = await sandbox();
    expect(await h.run("fetchArtifact", { ...cni(), mode: "0755" })).toMatchObject({ outcome: "failed", error: { code: "invalid_params" } });
  });
});
