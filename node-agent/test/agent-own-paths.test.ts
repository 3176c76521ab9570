/**
 * No step writes the agent's own files (AGENT_PATHS in contract/step-params.ts): the params schemas refuse them, so the
 * service never builds such a plan and a signed envelope naming one is refused at verification; the agent refuses
 * them again where it resolves paths, also when a symlink (or one with "..") would carry a write there, and a manifest
 * naming one never makes a reset delete it. Plus the state directory's mode (0700, also when it was created wider).
 */
import { chmod, lstat, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { MessageSchemaError } from "../../contract/errors.js";
import type { JsonObject } from "../../contract/json.js";
import type { StepKind } from "../../contract/step-envelope.js";
import { agentPathProblem, hostPathProblem, StepParamsSchemas } from "../../contract/step-params.js";
import { agentFiles } from "../src/agent-files.js";
import { loadOrCreateIdentity } from "../src/identity.js";
import { Manifest } from "../src/manifest.js";
import { resolveHostPath, resolveRecordedPath } from "../src/paths.js";
import { PathNotAllowedError } from "../src/step-errors.js";
import { startArtifactServer, type ArtifactServer } from "./support-host/artifact-server.js";
import { craftTarGz } from "./support-host/crafted-tar.js";
import { sha256 } from "./support-host/payloads.js";
import { sign, verify } from "./support-host/plan.js";
import { createSandbox } from "./support-host/sandbox.js";
import { hostUnderTest, type HostUnderTest } from "./support-host/step.js";
import { treeDiff } from "./support-host/tree-hash.js";

/** One path of each class of the agent's own files, and the words the refusal names it with. */
const OWN: [string, string][] = [
  ["/var/lib/flexnode/manifest.json", "state directory"],
  ["/var/lib/flexnode/state.json", "state directory"],
  ["/var/lib/flexnode/identity/node-key.pem", "state directory"],
  ["/var/lib/flexnode/prior/0123", "state directory"],
  ["/var/lib/flexnode", "state directory"],
  ["/etc/flexnode/agent.json", "settings file"],
  ["/opt/flexnode/bin/flexnode-agent", "executable"],
  ["/opt/flexnode/lib/flexnode-agent.mjs", "library directory"],
  ["/opt/extensions/flexnode-agent/flexnode-agent-0.1.0-x86-64.raw", "image directory"],
  ["/etc/extensions/flexnode-agent.raw", "system extension"],
  ["/var/lib/extensions/flexnode-agent.raw", "system extension"],
  ["/var/lib/extensions/flexnode-agent/usr/lib/extension-release.d/extension-release.flexnode-agent", "system extension"],
  ["/etc/systemd/system/flexnode-agent.service", "systemd units"],
  ["/etc/systemd/system/flexnode-agent.timer", "systemd units"],
  ["/etc/systemd/system/flexnode-agent.service.d/10-enrol-first.conf", "systemd units"],
  ["/etc/systemd/system/flexnode-enrol.service", "systemd units"],
  ["/etc/systemd/system/flexnode-sysext-reload.service", "systemd units"],
  ["/etc/systemd/system/multi-user.target.wants/flexnode-agent.service", "systemd units"],
  // Drop-ins systemd applies to the agent's units too: by prefix (every flexnode-*.service) and for every service.
  ["/etc/systemd/system/flexnode-.service.d/10-x.conf", "systemd units"],
  ["/etc/systemd/system/service.d/10-x.conf", "systemd units"],
];

/** Next to the agent's files, and written by the real plan or the executor tests: still allowed. */
const NEIGHBOURS = [
  "/etc/systemd/system/kubelet.service.d/10-flexnode.conf",
  "/etc/systemd/system/flexnode-containerd.service.d/10-x.conf",
  "/etc/flexnode/kubelet/config.yaml",
  "/etc/flexnode/ok.conf",
  "/opt/flexnode/bin/kubelet",
  "/opt/flexnode/containerd/bin/containerd",
  "/etc/systemd/system/flexnode-containerd.service",
  "/etc/systemd/system/kubelet.service",
  "/var/lib/extensions/containerd.raw",
  "/etc/extensions/kubernetes-1.31.2.raw",
  "/var/lib/flexnode-test/steps/x",
  "/var/lib/flexnodes",
  "/var/lib/kubelet/bootstrap-kubeconfig",
];

const artifact = { url: "https://mirror.example.net/flexnode/x", sha256: "a".repeat(64) };

/** Every params field that names a path to write, with a step that puts `p` there. */
const writers: [string, StepKind, (p: string) => JsonObject, string][] = [
  ["writeFiles", "writeFiles", (p) => ({ files: [{ path: p, mode: "0644", content: "{}" }] }), "/params/files/0/path"],
  [
    "writeFiles (second file)",
    "writeFiles",
    (p) => ({
      files: [
        { path: "/etc/cni/net.d/10-flexnode-bridge.conflist", mode: "0644", content: "x" },
        { path: p, mode: "0644", content: "{}" },
      ],
    }),
    "/params/files/1/path",
  ],
  ["fetchArtifact", "fetchArtifact", (p) => ({ artifact, destination: p, mode: "0755" }), "/params/destination"],
  ["fetchArtifact unpacking", "fetchArtifact", (p) => ({ artifact, destination: p, unpack: "tar.gz" }), "/params/destination"],
  ["fetchSecret", "fetchSecret", (p) => ({ secretRef: "bootstrap-kubeconfig", path: p, mode: "0600" }), "/params/path"],
];

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");

describe("the params schemas refuse the agent's own files", () => {
  describe.each(writers)("%s", (_what, kind, params, field) => {
    it.each(OWN)("refuses a signed envelope naming %s, with the field and why", (p, what) => {
      const step = { stepId: "own", kind, params: params(p) };
      expect(StepParamsSchemas[kind].safeParse(step.params).success).toBe(false);
      expect(() => verify(sign(step))).toThrow(MessageSchemaError);
      expect(() => verify(sign(step))).toThrow(new RegExp(`${escape(field)}: must not be the agent's own ${what}`));
    });

    it.each(NEIGHBOURS)("still accepts %s", (p) => {
      expect(verify(sign({ stepId: "ok", kind, params: params(p) })).params).toEqual(params(p));
    });
  });

  it.each([undefined, "/var/lib/extensions", "/etc/extensions"])("refuses installSysext of an image named flexnode-agent (directory %s)", (directory) => {
    const params = { name: "flexnode-agent", artifact, ...(directory ? { directory } : {}) };
    expect(() => verify(sign({ stepId: "own", kind: "installSysext", params }))).toThrow(/\/params\/name: must not be the agent's own system extension/);
    for (const name of ["FlexNode-Agent", "flexnode-agent.v2"])
      expect(StepParamsSchemas.installSysext.safeParse({ ...params, name }).success, name).toBe(false);
    expect(StepParamsSchemas.installSysext.safeParse({ ...params, name: "containerd" }).success).toBe(true);
  });

  it("judges the path the host would see: .., empty and . segments resolved, case ignored", () => {
    for (const p of [
      "/var/lib//flexnode/state.json",
      "/var/lib/flexnode/",
      "/var/lib/x/../flexnode/manifest.json",
      "/var/./lib/flexnode",
      "/opt/flexnode/bin/../bin/flexnode-agent",
      "/VAR/LIB/FLEXNODE/STATE.JSON",
      "/etc/systemd/system/FlexNode-Agent.service",
      "/Etc/Flexnode/Agent.json",
    ])
      expect(agentPathProblem(p), p).toMatch(/must not be the agent's own/);
    // The schema's own check refuses the unnormalised spellings before that, as it always did.
    expect(hostPathProblem("/etc/../var/lib/flexnode/state.json")).toMatch(/"\." or "\.\."/);
    expect(hostPathProblem("/VAR/LIB/FLEXNODE/STATE.JSON")).toMatch(/must be under/);
    expect(hostPathProblem("/var/lib/Flexnode/state.json")).toMatch(/must not be the agent's own state directory/);
    for (const p of NEIGHBOURS) expect(agentPathProblem(p), p).toBeUndefined();
  });
});

const roots: string[] = [];
afterEach(async () => {
  for (const r of roots.splice(0)) await rm(r, { recursive: true, force: true });
});
async function root(): Promise<string> {
  const r = await createSandbox();
  roots.push(r);
  return r;
}

describe("the agent refuses to write its own files, whatever reaches an executor", () => {
  it.each(OWN)("resolveHostPath refuses %s for a write (and allows the read)", async (p) => {
    const r = await root();
    await expect(resolveHostPath(r, p, { write: true })).rejects.toThrow(PathNotAllowedError);
    await expect(resolveHostPath(r, p, { write: true })).rejects.toThrow(/must not be the agent's own/);
    await expect(resolveRecordedPath(r, p)).rejects.toThrow(PathNotAllowedError);
    expect((await resolveHostPath(r, p, { write: false })).hostPath).toBe(p);
  });

  it.each([
    ["an absolute link", "/etc/kube", "/var/lib/flexnode", "/etc/kube/manifest.json", "/var/lib/flexnode/manifest.json"],
    ["a relative link climbing with ..", "/opt/tools", "../var/lib/flexnode/identity", "/opt/tools/node-key.pem", "/var/lib/flexnode/identity/node-key.pem"],
    ["a link to a sibling", "/opt/flexnode/current", "bin", "/opt/flexnode/current/flexnode-agent", "/opt/flexnode/bin/flexnode-agent"],
    [
      "a drop-in directory linked to the agent's",
      "/etc/systemd/system/kubelet.service.d",
      "flexnode-agent.service.d",
      "/etc/systemd/system/kubelet.service.d/10-x.conf",
      "/etc/systemd/system/flexnode-agent.service.d/10-x.conf",
    ],
    ["a link to a sysext directory", "/var/lib/images", "../../etc/extensions", "/var/lib/images/flexnode-agent.raw", "/etc/extensions/flexnode-agent.raw"],
  ])("refuses a write carried there by %s", async (_what, link, target, requested, lands) => {
    const r = await root();
    await mkdir(path.join(r, path.dirname(link)), { recursive: true });
    await mkdir(path.join(r, path.dirname(lands)), { recursive: true });
    await symlink(target, path.join(r, link));
    const refused = resolveHostPath(r, requested, { write: true });
    await expect(refused).rejects.toThrow(PathNotAllowedError);
    await expect(resolveHostPath(r, requested, { write: true })).rejects.toThrow(`refusing to write ${lands} (${requested} resolves to it through a symlink)`);
  });
});

describe("steps that would reach the agent's files through the host, run by the agent", () => {
  let server: ArtifactServer;
  beforeAll(async () => {
    server = await startArtifactServer();
  });
  afterAll(() => server.close());

  async function sandbox(): Promise<HostUnderTest> {
    const h = await hostUnderTest({ ca: server.ca });
    roots.push(h.root);
    return h;
  }

  it("writeFiles through a symlink into /var/lib/flexnode fails before any change, and the manifest is untouched", async () => {
    const h = await sandbox();
    // A plan that ran before: the manifest holds a record a later reset needs.
    expect((await h.run("writeFiles", { files: [{ path: "/etc/flexnode/kubelet/config.yaml", mode: "0644", content: "x" }] }, "s0")).outcome).toBe("succeeded");
    const manifestFile = Manifest.file(h.root);
    const manifestBefore = await readFile(manifestFile, "utf8");
    await symlink("/var/lib/flexnode", path.join(h.root, "etc/kube"));
    const before = await h.tree();
    const result = await h.run("writeFiles", {
      files: [
        { path: "/etc/flexnode/ok.conf", mode: "0644", content: "x" },
        { path: "/etc/kube/manifest.json", mode: "0644", content: '{"version":1,"changes":[]}\n' },
      ],
    });
    expect(result).toMatchObject({ outcome: "failed", error: { code: "path_not_allowed", retryable: false } });
    expect(result.outcome === "failed" && result.error.message).toContain("/var/lib/flexnode/manifest.json");
    expect(await readFile(manifestFile, "utf8")).toBe(manifestBefore);
    expect(treeDiff(before, await h.tree())).toEqual([]);
  });

  // The first entry refused is the agent's directory the archive lists (implicitly) before the file in it.
  it.each([
    ["/var/lib", "flexnode/manifest.json", "/var/lib/flexnode"],
    ["/etc/systemd/system", "flexnode-agent.service.d/override.conf", "/etc/systemd/system/flexnode-agent.service.d"],
    ["/opt/flexnode", "bin/flexnode-agent", "/opt/flexnode/bin/flexnode-agent"],
  ])("fetchArtifact unpacking into %s refuses an entry %s, placing nothing", async (destination, entry, lands) => {
    const h = await sandbox();
    const body = craftTarGz([
      { path: "harmless.txt", body: "x" },
      { path: entry, body: "[Service]\nExecStart=\nExecStart=/bin/true\n" },
    ]);
    const name = `own-${sha256(body).slice(0, 8)}.tgz`;
    server.put(name, body);
    const before = await h.tree();
    const result = await h.run("fetchArtifact", { artifact: { url: server.url(name), sha256: sha256(body) }, destination, unpack: "tar.gz" });
    expect(result).toMatchObject({ outcome: "failed", error: { code: "path_not_allowed", retryable: false } });
    expect(result.outcome === "failed" && result.error.message).toContain(`refusing to write ${lands}: it must not be the agent's own`);
    // Nothing recorded either: the reset only drops the emptied download cache.
    expect((await h.reset()).undone).toEqual([]);
    expect(treeDiff(before, await h.tree())).toEqual([]);
  });

  it("a manifest naming the agent's files never makes reset remove them", async () => {
    const h = await sandbox();
    const state = path.join(h.root, "var/lib/flexnode/state.json");
    const unit = path.join(h.root, "etc/systemd/system/flexnode-agent.service");
    await writeFile(state, "{}\n", { mode: 0o600 });
    await writeFile(unit, "[Service]\n");
    const changes = ["/etc/systemd/system/flexnode-agent.service", "/var/lib/flexnode/state.json"].map((p) => ({
      stepId: "s1",
      key: `file:${p}`,
      type: "file",
      path: p,
      prior: { state: "absent" },
    }));
    await writeFile(Manifest.file(h.root), JSON.stringify({ version: 1, changes }), { mode: 0o600 });
    const report = await h.reset();
    expect(report.undone).toEqual([]);
    expect(report.failed.map((f) => f.change)).toEqual([
      "file /var/lib/flexnode/state.json (created)",
      "file /etc/systemd/system/flexnode-agent.service (created)",
    ]);
    expect(await readFile(state, "utf8")).toBe("{}\n");
    expect(await readFile(unit, "utf8")).toBe("[Service]\n");
  });
});

describe("the agent's state directory is 0700", () => {
  const modeOf = async (p: string) => (await stat(p)).mode & 0o7777;

  it("as enrolment's identity creates it on a fresh host (missing parents 0755)", async () => {
    const r = await mkdtemp(path.join(tmpdir(), "flexnode-own-"));
    roots.push(r);
    await loadOrCreateIdentity(r);
    const files = agentFiles(r);
    expect(files.stateDir).toBe(path.join(r, "var/lib/flexnode"));
    expect(await modeOf(files.stateDir)).toBe(0o700);
    expect(await modeOf(files.identityDir)).toBe(0o700);
    expect(await modeOf(path.join(r, "var/lib"))).toBe(0o755);
  });

  it("also when it was created 0755 before (older agents on mutable installs): identity and manifest narrow it", async () => {
    const r = await mkdtemp(path.join(tmpdir(), "flexnode-own-"));
    roots.push(r);
    const dir = agentFiles(r).stateDir;
    await mkdir(dir, { recursive: true });
    await chmod(dir, 0o755);
    await loadOrCreateIdentity(r);
    expect(await modeOf(dir)).toBe(0o700);

    await chmod(dir, 0o755);
    const m = await Manifest.open(r);
    await m.record("s1", { type: "module", name: "br_netfilter" });
    expect(await modeOf(dir)).toBe(0o700);
    expect((await lstat(path.join(dir, "prior"))).mode & 0o7777).toBe(0o700);
  });
});

describe("no unit step names the agent's own units", () => {
  it.each(["flexnode-agent.service", "flexnode-agent.timer", "Flexnode-Agent.service", "flexnode-enrol.service", "flexnode-agent@x.service"])(
    "refuses systemdUnits %s at verification",
    (name) => {
      const raw = sign({ stepId: "units", kind: "systemdUnits", params: { units: [{ name, start: false }] } });
      expect(() => verify(raw)).toThrow(/params\/units\/0\/name: must not be one of the agent's own units/);
    },
  );

  it("still takes the plan's own units", () => {
    for (const name of ["kubelet.service", "flexnode-containerd.service", "containerd.service"])
      expect(() => verify(sign({ stepId: "units", kind: "systemdUnits", params: { units: [{ name, start: true }] } }))).not.toThrow();
  });
});
