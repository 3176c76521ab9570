import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { stat } from "node:fs/promises";
import { PassThrough } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { agentFiles } from "../src/agent-files.js";
import { main, AGENT_VERSION, type CliIo } from "../src/cli.js";
import { EXIT } from "../src/exit-codes.js";
import { RecordingHostCommands } from "../src/host-commands.js";
import { startApp, type TestApp, useStandInSaga } from "../../test/function-app/index.js";
import { startHttpFront, type HttpFront } from "./support-service/http-front.js";
import { startNodeService } from "./support-service/node-service.js";
import { HOSTS, scratchRoot, type ScratchRoot } from "./support-service/scratch-root.js";
import { testHostSide } from "./support-service/test-host-side.js";

useStandInSaga();

let root: ScratchRoot;
beforeEach(async () => {
  root = await scratchRoot({ ...HOSTS.ubuntu, "/etc/machine-id": `${randomBytes(16).toString("hex")}\n` });
});
afterEach(async () => {
  await root.remove();
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  json: Record<string, unknown>;
}

function capture(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on("data", (c: Buffer) => chunks.push(c));
  return { stream, text: () => Buffer.concat(chunks).toString("utf8") };
}

async function cli(args: string[], extra: Partial<CliIo> = {}): Promise<Run> {
  const out = capture();
  const err = capture();
  const code = await main(["--root", root.dir, ...args], { stdout: out.stream, stderr: err.stream, env: {}, host: new RecordingHostCommands(), ...extra });
  const stdout = out.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(stdout.trim().split("\n").at(-1) ?? "{}") as Record<string, unknown>;
  } catch {
    // human output
  }
  return { code, stdout, stderr: err.text(), json };
}

describe("flexnode-agent CLI", () => {
  it("prints its version, for people and for machines", async () => {
    expect(await cli(["version"])).toMatchObject({ code: 0, stdout: `flexnode-agent ${AGENT_VERSION}\n` });
    expect((await cli(["version", "--output", "json"])).json).toEqual({ ok: true, version: AGENT_VERSION });
  });

  it("refuses a bad agent.json naming the file and field, and exits 78 before touching anything", async () => {
    await root.write("/etc/flexnode/agent.json", JSON.stringify({ enrolmentUrl: 42 }));
    const human = await cli(["enrol"]);
    expect(human.code).toBe(EXIT.config);
    expect(human.stderr).toMatch(/^error: .*\/etc\/flexnode\/agent\.json: enrolmentUrl: /);

    await root.write("/etc/flexnode/agent.json", JSON.stringify({ enrollmentUrl: "https://x.example/api/enrol" }));
    const typo = await cli(["--output", "json", "status"]);
    expect(typo.code).toBe(EXIT.config);
    expect(typo.json).toMatchObject({ ok: false, error: { code: "bad_config", field: "enrollmentUrl", message: expect.stringContaining("unknown setting") } });

    await root.write("/etc/flexnode/agent.json", JSON.stringify({ preflight: { ignore: ["Swap Off"] } }));
    expect((await cli(["--output", "json", "preflight"])).json).toMatchObject({ error: { field: "preflight.ignore.0" } });

    await root.write("/etc/flexnode/agent.json", "{ not json");
    expect((await cli(["status"])).code).toBe(EXIT.config);
    // None of the refused runs created an identity or state.
    await expect(stat(agentFiles(root.dir).identityDir)).rejects.toMatchObject({ code: "ENOENT" });
    await expect(stat(agentFiles(root.dir).stateFile)).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("refuses bad environment values and bad flags by name", async () => {
    const env = await cli(["--output", "json", "status"], { env: { FLEXNODE_TOKEN: "not-a-token" } });
    expect(env).toMatchObject({ code: EXIT.config, json: { ok: false, error: { source: "environment", field: "FLEXNODE_TOKEN" } } });
    expect(env.stdout).not.toContain("not-a-token");
    expect((await cli(["frobnicate"])).code).toBe(EXIT.usage);
    expect((await cli(["status", "--colour"])).code).toBe(EXIT.usage);
    const ignore = await cli(["--output", "json", "preflight", "--ignore", "swap-off,bogus"]);
    expect(ignore).toMatchObject({ code: EXIT.usage, json: { error: { code: "usage", message: expect.stringMatching(/^--ignore: /) } } });
  });

  it("says it is not enrolled, and `run` exits 3 until it is", async () => {
    const status = await cli(["--output", "json", "status"]);
    expect(status).toMatchObject({ code: 0, json: { ok: true, status: { enrolled: false, recentResults: [], applied: [] } } });
    expect((await cli(["status"])).stdout).toContain("enrolment: not enrolled");
    expect((await cli(["run"], { hostSide: testHostSide })).code).toBe(EXIT.notEnrolled);
  });

  it("resets an empty manifest and reports it", async () => {
    const reset = await cli(["--output", "json", "reset"]);
    expect(reset).toMatchObject({ code: 0, json: { ok: true, reset: { undone: [], failed: [] } } });
  });

  it("reports preflight checks with an exit code that follows the verdict", async () => {
    const report = await cli(["--output", "json", "preflight", "--ignore", "api-server-reachable"]);
    const preflight = report.json["preflight"] as { ok: boolean; checks: { name: string; status: string }[] };
    expect(preflight.checks.length).toBeGreaterThan(0);
    expect(report.code).toBe(preflight.ok ? EXIT.ok : EXIT.preflightFailed);
  });
});

describe("flexnode-agent enrol and status against the service", () => {
  let app: TestApp;
  let front: HttpFront;
  beforeEach(async () => {
    app = await startApp();
    expect((await app.createPool("edge")).status).toBe(201);
    front = await startHttpFront(app);
  });
  afterEach(async () => {
    await front.close();
    await app.close();
  });

  it("enrols with --url, never prints the token, and status shows node, pool and mailbox", async () => {
    const token = await app.createToken("edge");
    const enrol = await cli(["enrol", "--url", `${front.url}/api/enrol#${token}`]);
    expect(enrol.code).toBe(0);
    expect(enrol.stdout).toMatch(/· identity: created node key /);
    expect(enrol.stdout).toMatch(/enrolled as fn-[0-9a-f]{24} in pool edge/);
    const secret = token.split(".")[2]!;
    expect(enrol.stdout + enrol.stderr).not.toContain(secret);

    const status = await cli(["--output", "json", "status"]);
    const s = status.json["status"] as {
      enrolled: boolean;
      node: { nodeId: string; pool: string; status: string };
      mailbox: { queue: string; credentialsExpireAt: string };
      identity: { keyId: string };
    };
    expect(s).toMatchObject({
      enrolled: true,
      node: { pool: "edge", status: "Enrolling" },
      mailbox: { queue: `node-${s.node.nodeId}`, resultsQueue: "node-results" },
    });
    expect(Date.parse(s.mailbox.credentialsExpireAt)).toBeGreaterThan(Date.now());
    expect(JSON.stringify(status.json)).not.toMatch(/SharedAccessSignature|sig=/);
    const human = await cli(["status"]);
    expect(human.stdout).toContain(`node:      ${s.node.nodeId} in pool edge`);
    expect(human.stdout).toContain(`mailbox:   node-${s.node.nodeId}; tokens valid until`);

    // Again, with the URL from agent.json and the token from the environment: the same node (200).
    await root.write("/etc/flexnode/agent.json", JSON.stringify({ enrolmentUrl: `${front.url}/api/enrol` }));
    const again = await cli(["--output", "json", "enrol"], { env: { FLEXNODE_TOKEN: token } });
    expect(again.json).toMatchObject({ ok: true, enrolment: { httpStatus: 200, nodeId: s.node.nodeId } });
  });

  it("exits 5 with the service's problem when enrolment is refused", async () => {
    const refused = await cli(["--output", "json", "enrol", "--url", `${front.url}/api/enrol#fnt.${"0".repeat(16)}.${"A".repeat(43)}`]);
    expect(refused).toMatchObject({
      code: EXIT.refused,
      json: { ok: false, error: { code: "service_refused", status: 403, problem: { type: "token-unknown" } } },
    });
    expect(refused.stdout).not.toContain("A".repeat(43));
  });
});

describe("flexnode-agent run --output json", () => {
  it("prints one JSON line per event and stops on the signal", async () => {
    const service = await startNodeService();
    try {
      expect((await cli(["enrol", "--url", `${service.url}/api/enrol#${service.issueToken()}`])).code).toBe(0);
      const controller = new AbortController();
      const out = capture();
      out.stream.on("data", (c: Buffer) => {
        if (c.toString().includes('"mailbox-connected"')) controller.abort();
      });
      const code = await main(["--root", root.dir, "--output", "json", "run"], {
        stdout: out.stream,
        stderr: new PassThrough(),
        env: {},
        signal: controller.signal,
        host: new RecordingHostCommands(),
        hostSide: testHostSide,
      });
      expect(code).toBe(0);
      const lines = out
        .text()
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as { type: string; at: string });
      expect(lines.map((l) => l.type)).toEqual(["mailbox-connected", "stopped"]);
      expect(lines[0]).toMatchObject({ queue: expect.stringMatching(/^node-fn-/), at: expect.stringMatching(/Z$/) });
    } finally {
      await service.close();
    }
  });
});

describe("flexnode-agent run as a process", () => {
  it("stops on SIGTERM with exit code 0 after closing its mailbox connections", async () => {
    const service = await startNodeService();
    try {
      expect((await cli(["enrol", "--url", `${service.url}/api/enrol#${service.issueToken()}`])).code).toBe(0);
      const child = spawn(
        process.execPath,
        ["--import", "tsx", fileURLToPath(new URL("../src/main.ts", import.meta.url)), "--root", root.dir, "--output", "json", "run"],
        { stdio: ["ignore", "pipe", "pipe"] },
      );
      let stdout = "";
      let signalled = false;
      child.stdout.on("data", (c: Buffer) => {
        stdout += c.toString();
        if (!signalled && stdout.includes('"mailbox-connected"')) signalled = child.kill("SIGTERM");
      });
      const [code] = (await once(child, "exit")) as [number | null];
      expect(code).toBe(0);
      expect(
        stdout
          .trim()
          .split("\n")
          .map((l) => (JSON.parse(l) as { type: string }).type),
      ).toEqual(["mailbox-connected", "stopped"]);
      // The broker saw the agent's receive link attach on the node's queue, authorised by its Listen token.
      expect(service.emulator.log.of("linkAttached", (e) => e.role === "receive" && e.link.authorizedBy.ruleName === "flexnode-node-listen")).toHaveLength(1);
    } finally {
      await service.close();
    }
  }, 30_000);
});
