/**
 * Join configurations per pool: the admin route on the whole app, and each format checked by the tool that consumes
 * it — `ignition-validate` (Debian's ignition package) for Ignition, `cloud-init schema` (Debian's cloud-init) for
 * cloud-init, `sh -n` for the script, the Butane subset transpiler of node-agent/packaging for Butane — and the token
 * inside each enrols a node.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as YAML from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { transpile } from "../../node-agent/packaging/flatcar/butane.js";
import { AGENT_UNIT } from "../../orchestrations/join-config/agent-unit.js";
import { admin, newNode, reader, startApp, type TestApp, useStandInSaga } from "../function-app/index.js";

useStandInSaga();

const artifact = (name: string) => ({ url: `https://mirror.example/flexnode/${name}`, sha256: createHash("sha256").update(name).digest("hex") });
const byArch = (name: (arch: string) => string) => ({ amd64: artifact(name("amd64")), arm64: artifact(name("arm64")) });
const CATALOG = {
  containerd: byArch((a) => `containerd-${a}.tar.gz`),
  kubernetes: { "1.31.2": byArch((a) => `kubelet-${a}`) },
  cniPlugins: byArch((a) => `cni-${a}.tgz`),
  sysext: { containerd: byArch((a) => `containerd-${a}.raw`), kubernetes: { "1.31.2": byArch((a) => `kubernetes-${a}.raw`) } },
  agent: { version: "0.1.0", executable: byArch((a) => `flexnode-agent-${a}`), sysext: byArch((a) => `flexnode-agent-${a}.raw`) },
};

let app: TestApp;
let dir: string;
beforeAll(async () => {
  app = await startApp({ settings: { ARTIFACT_CATALOG: JSON.stringify(CATALOG) } });
  await app.createPool("edge");
  dir = mkdtempSync(join(tmpdir(), "join-config-"));
});
afterAll(async () => {
  await app.close();
  rmSync(dir, { recursive: true, force: true });
});

interface JoinConfig {
  format: string;
  tokenId: string;
  maxUses: number;
  content: string;
}
const problemType = (res: { json: unknown }) => (res.json as { type: string }).type.replace("https://flexnode.dev/problems/", "");

async function joinConfig(body: Record<string, unknown>): Promise<JoinConfig> {
  const res = await app.call("POST", "/api/manage/pools/edge/join-config", { headers: admin, body });
  expect(res.status, res.body as string).toBe(201);
  return res.json as JoinConfig;
}

const tokenIn = (content: string) => /fnt\.[0-9a-f]{16}\.[A-Za-z0-9_-]{43}/.exec(content)![0];
const save = (name: string, content: string) => {
  const file = join(dir, name);
  writeFileSync(file, content);
  return file;
};

describe("POST /api/manage/pools/{pool}/join-config", () => {
  it("makes a valid Ignition config (ignition-validate) with the sysext image, agent.json and the enrol unit", async () => {
    const config = await joinConfig({ format: "ignition" });
    const ign = JSON.parse(config.content) as { ignition: { version: string }; storage: { files: { path: string; contents: { source: string } }[] } };
    expect(ign.ignition.version).toBe("3.3.0");
    expect(ign.storage.files.map((f) => f.path)).toEqual(["/opt/extensions/flexnode-agent/flexnode-agent-0.1.0-x86-64.raw", "/etc/flexnode/agent.json"]);
    const result = spawnSync("ignition-validate", [save("node.ign", config.content)], { encoding: "utf8" });
    expect(result.error, "ignition-validate must be installed (Debian package ignition)").toBeUndefined();
    expect({ status: result.status, out: result.stdout + result.stderr }).toEqual({ status: 0, out: "" });
    // A broken one is refused: the check can fail.
    const broken = spawnSync("ignition-validate", [save("broken.ign", config.content.replace('"3.3.0"', '"3.9.0"'))], { encoding: "utf8" });
    expect(broken.status).not.toBe(0);
  });

  it("makes Butane that transpiles to the same Ignition", async () => {
    const config = await joinConfig({ format: "butane", arch: "arm64" });
    expect(YAML.parse(config.content)).toMatchObject({ variant: "flatcar", version: "1.0.0" });
    const ign = JSON.parse(transpile(config.content)) as { storage: { files: { path: string }[] } };
    expect(ign.storage.files[0]!.path).toBe("/opt/extensions/flexnode-agent/flexnode-agent-0.1.0-arm64.raw");
  });

  it("makes cloud-init user data that `cloud-init schema` accepts, installing the shipped unit", async () => {
    const config = await joinConfig({ format: "cloud-init", maxUses: 5 });
    expect(config.maxUses).toBe(5);
    expect(config.content.startsWith("#cloud-config\n")).toBe(true);
    const doc = YAML.parse(config.content) as { write_files: { path: string; content: string }[]; runcmd: string[] };
    expect(doc.write_files.find((f) => f.path === "/etc/systemd/system/flexnode-agent.service")?.content).toBe(AGENT_UNIT);
    expect(doc.runcmd.join("\n")).toContain(`${CATALOG.agent.executable.amd64.sha256}  /opt/flexnode/bin/flexnode-agent.download' | sha256sum -c -`);
    const result = spawnSync("cloud-init", ["schema", "--config-file", save("user-data", config.content)], { encoding: "utf8" });
    expect(result.error, "cloud-init must be installed (Debian package cloud-init)").toBeUndefined();
    expect({ status: result.status, err: result.stderr }).toMatchObject({ status: 0 });
    expect(result.stdout).toMatch(/^Valid cloud-config: /);
    const broken = spawnSync("cloud-init", ["schema", "--config-file", save("broken", config.content.replace("write_files:", "write_files: 7\nx:"))], {
      encoding: "utf8",
    });
    expect(broken.status).not.toBe(0);
  });

  it("makes a POSIX shell script that parses", async () => {
    const config = await joinConfig({ format: "shell" });
    expect(config.content.startsWith("#!/bin/sh\n")).toBe(true);
    execFileSync("sh", ["-n", save("join.sh", config.content)]);
    expect(config.content).toContain("/opt/flexnode/bin/flexnode-agent enrol");
  });

  it("puts a fresh token in each config that enrols a node once, audited with the format", async () => {
    const config = await joinConfig({ format: "shell" });
    const token = tokenIn(config.content);
    expect((await app.enrol(newNode(), token)).status).toBe(201);
    expect((await app.enrol(newNode(), token)).status).toBe(403);
    const tokenView = await app.call("GET", `/api/manage/tokens/${config.tokenId}`, { headers: reader });
    expect(tokenView.json).toMatchObject({ pool: "edge", uses: 1, maxUses: 1, description: "join-config shell" });
    expect(tokenView.body).not.toContain(token.split(".")[2]);
  });

  it("refuses: 401/403 without FlexNode.Admin, 404 for an unknown pool, 422 naming a bad format; no token is minted", async () => {
    const before = await app.snapshot();
    expect((await app.call("POST", "/api/manage/pools/edge/join-config", { body: { format: "shell" } })).status).toBe(401);
    expect((await app.call("POST", "/api/manage/pools/edge/join-config", { headers: reader, body: { format: "shell" } })).status).toBe(403);
    const missing = await app.call("POST", "/api/manage/pools/nowhere/join-config", { headers: admin, body: { format: "shell" } });
    expect([missing.status, problemType(missing)]).toEqual([404, "not-found"]);
    const bad = await app.call("POST", "/api/manage/pools/edge/join-config", { headers: admin, body: { format: "kickstart" } });
    expect([bad.status, problemType(bad), (bad.json as { errors: { path: string }[] }).errors[0]!.path]).toEqual([422, "validation-failed", "/format"]);
    expect(await app.snapshot()).toBe(before);
  });

  it("answers 503 not-configured, minting nothing, when the catalog does not say where the agent is", async () => {
    const { agent: _agent, ...withoutAgent } = CATALOG;
    const other = await startApp({ settings: { ARTIFACT_CATALOG: JSON.stringify(withoutAgent) } });
    try {
      await other.createPool("edge");
      const before = await other.snapshot();
      const res = await other.call("POST", "/api/manage/pools/edge/join-config", { headers: admin, body: { format: "ignition" } });
      expect([res.status, problemType(res)]).toEqual([503, "not-configured"]);
      expect(await other.snapshot()).toBe(before);
    } finally {
      await other.close();
    }
  });
});

describe("the unit join configs install", () => {
  it("is the shipped flexnode-agent.service without its comments", () => {
    const shipped = readFileSync("node-agent/packaging/systemd/flexnode-agent.service", "utf8")
      .split("\n")
      .filter((l) => !l.startsWith("#"))
      .join("\n")
      .replace(/\n{3,}/g, "\n\n")
      .replace(/^\n+/, "");
    expect(AGENT_UNIT).toBe(shipped);
  });
});
