import { chmod, chown, stat } from "node:fs/promises";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { agentFiles } from "../src/agent-files.js";
import { main } from "../src/cli.js";
import { ConfigError, resolveConfig } from "../src/config.js";
import { EXIT } from "../src/exit-codes.js";
import { RecordingHostCommands } from "../src/host-commands.js";
import { scratchRoot, type ScratchRoot } from "./support-service/scratch-root.js";

let root: ScratchRoot;
beforeEach(async () => {
  root = await scratchRoot();
});
afterEach(async () => {
  await root.remove();
});

describe("agent.json settings", () => {
  it("archive caps: MiB and entries from agent.json reach the executors as bytes and entries; absent, the defaults apply", async () => {
    expect((await resolveConfig(root.dir, {})).archiveLimits).toBeUndefined();
    await root.write("/etc/flexnode/agent.json", JSON.stringify({ archive: { maxUnpackedMiB: 512, maxEntries: 5000 } }));
    expect((await resolveConfig(root.dir, {})).archiveLimits).toEqual({ maxUnpackedBytes: 512 * 1024 * 1024, maxEntries: 5000 });
    await root.write("/etc/flexnode/agent.json", JSON.stringify({ archive: { maxEntries: 0 } }));
    await expect(resolveConfig(root.dir, {})).rejects.toMatchObject({ constructor: ConfigError, field: "archive.maxEntries" });
  });
});

const TOKEN = `fnt.0123456789abcdef.${"A".repeat(43)}`;
const PEM = "-----BEGIN CERTIFICATE-----\nMIIBplaceholder\n-----END CERTIFICATE-----\n";
const asRoot = process.getuid?.() === 0;

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = new PassThrough();
  const err = new PassThrough();
  const text = (s: PassThrough) => {
    const chunks: Buffer[] = [];
    s.on("data", (c: Buffer) => chunks.push(c));
    return () => Buffer.concat(chunks).toString("utf8");
  };
  const [stdout, stderr] = [text(out), text(err)];
  const code = await main(["--root", root.dir, ...args], { stdout: out, stderr: err, env: {}, host: new RecordingHostCommands() });
  return { code, stdout: stdout(), stderr: stderr() };
}

async function configFile(content: object, mode: number, uid = 0): Promise<string> {
  const path = join(root.dir, "/etc/flexnode/agent.json");
  await root.write("/etc/flexnode/agent.json", JSON.stringify(content));
  await chmod(path, mode);
  await chown(path, uid, 0);
  return path;
}

describe("permissions of agent.json and the CA file", () => {
  it.each([
    ["0664", "writable by its group (mode 0664)"],
    ["0646", "writable by others (mode 0646)"],
    ["0666", "writable by group and others (mode 0666)"],
  ])("refuses an agent.json with mode %s (exit 78), before touching anything", async (mode, problem) => {
    const path = await configFile({ enrolmentUrl: "https://flexnode.example.net/api/enrol" }, Number.parseInt(mode, 8));
    const run = await cli(["--output", "json", "status"]);
    expect(run.code).toBe(EXIT.config);
    expect(JSON.parse(run.stdout)).toMatchObject({
      ok: false,
      error: { code: "bad_config", source: path, field: "(file)", message: expect.stringContaining(problem) },
    });
    await expect(stat(agentFiles(root.dir).identityDir)).rejects.toMatchObject({ code: "ENOENT" });
  });

  it.skipIf(!asRoot)("refuses an agent.json root does not own, when running as root (exit 78)", async () => {
    await configFile({ token: TOKEN }, 0o600, 1000);
    const run = await cli(["--output", "json", "enrol"]);
    expect(run.code).toBe(EXIT.config);
    expect(JSON.parse(run.stdout)).toMatchObject({
      error: { code: "bad_config", field: "(file)", message: expect.stringContaining("owned by uid 1000, not root") },
    });
  });

  it("refuses a CA file others can write, or root does not own, from agent.json or --ca-file (exit 78)", async () => {
    await root.write("/etc/flexnode/ca.pem", PEM);
    const ca = join(root.dir, "/etc/flexnode/ca.pem");
    await configFile({ caFile: "/etc/flexnode/ca.pem" }, 0o644);
    await chmod(ca, 0o664);
    const fromFile = await cli(["--output", "json", "preflight"]);
    expect(fromFile.code).toBe(EXIT.config);
    expect(JSON.parse(fromFile.stdout)).toMatchObject({
      error: { field: "caFile", message: expect.stringContaining("/etc/flexnode/ca.pem is writable by its group (mode 0664)") },
    });
    await chmod(ca, 0o602);
    expect((await cli(["--output", "json", "run", "--ca-file", "/etc/flexnode/ca.pem"])).code).toBe(EXIT.config);
    if (asRoot) {
      await chmod(ca, 0o644);
      await chown(ca, 1000, 1000);
      const foreign = await cli(["--output", "json", "status"]);
      expect(JSON.parse(foreign.stdout)).toMatchObject({ error: { field: "caFile", message: expect.stringContaining("owned by uid 1000, not root") } });
      await chown(ca, 0, 0);
    }
    // Root's 0644 CA file is fine.
    await chmod(ca, 0o644);
    expect((await cli(["status"])).code).toBe(EXIT.ok);
  });

  it("warns (stderr, the journal under systemd) about a token every user can read, and carries on", async () => {
    await configFile({ token: TOKEN }, 0o644);
    const readable = await cli(["status"]);
    expect(readable.code).toBe(EXIT.ok);
    expect(readable.stderr).toMatch(
      /^warning: .*\/etc\/flexnode\/agent\.json holds an enrolment token and every user can read it \(mode 0644\): chmod 600 it\n$/,
    );
    expect(readable.stderr).not.toContain(TOKEN);

    await configFile({ token: TOKEN }, 0o600);
    expect(await cli(["status"])).toMatchObject({ code: EXIT.ok, stderr: "" });
    await configFile({ enrolmentUrl: "https://flexnode.example.net/api/enrol" }, 0o644);
    expect(await cli(["status"])).toMatchObject({ code: EXIT.ok, stderr: "" });
  });
});
