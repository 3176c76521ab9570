/**
 * What the agent costs a node while it waits for work, next to the figures Microsoft publishes for the Azure Arc
 * connected machine agent. Two places to measure it:
 *
 * `--where host` (the default where the real-host tier can run: root, systemd-nspawn): on the tier's machine
 * (test/host/): Debian 12 with real systemd, the agent installed from its sysext image and running as the shipped
 * unit, enrolled and onboarded to Ready through the whole service (sandbox stack) and the real plan. Then, per
 * `--mode`:
 *   resident  the agent process's RSS (private + file-backed) and CPU over --seconds after --settle;
 *   drain     agent.json mode "drain" and flexnode-agent.timer enabled: over --drain-seconds, the share of time an
 *             agent process exists at all, its RSS while it does, the CPU of every run (reaped by the machine's
 *             PID 1), start-up to "listening on mailbox"; then a decommission, and how long until the reset started.
 *   both      (default) resident, then drain on the same node.
 * Quick (CI): 1 s settle, 5 s window; drain with the timer shortened to 5 s by a runtime drop-in, 15 s window.
 * Full: 30 s settle, 60 s window; drain with the shipped timer (50 s), 160 s window.
 *
 * `--where process`: the bundled agent (`node dist/agent/flexnode-agent.mjs run`) on this machine, enrolled,
 * connected to its mailbox on the Service Bus emulator over TLS exactly as in production (namespace +
 * AzureSASCredential, the emulator's CA trusted through NODE_EXTRA_CA_CERTS), and idle; resident only. Prints
 * resident memory (VmRSS, and the peak VmHWM) and CPU (utime+stime ticks from /proc/<pid>/stat over the window, as
 * % of one core).
 *
 *   tsx bench/agent-footprint.ts [--quick] [--where host|process] [--mode resident|drain|both] [--seconds 60]
 *                                [--settle 30] [--drain-seconds 160]
 *                                [--subject bundle|sea|baseline] [--node-options "--max-semi-space-size=1"] (process)
 *
 * In process mode the window opens --settle seconds after the agent's receiver attached (quick: 1 s, 5 s window).
 *
 * The node's state is written with the agent's own AgentStateStore and identity code (what `enrol` would leave), and
 * only the node API the agent calls on start is served (signed requests verified with the contract's verifier): the
 * rest of the service has nothing to do with an idle agent. No step is ever sent, so the agent runs no host command.
 * `--subject baseline` measures a bare Service Bus receiver built the same way (esbuild bundle, same SDK): the floor
 * any Node agent on this SDK pays. If the bundle has no working `run` command yet, the benchmark says so and measures
 * the baseline instead.
 */
import { generateKeyPairSync, randomBytes, randomUUID, type KeyObject } from "node:crypto";
import { once } from "node:events";
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawn, type ChildProcess } from "node:child_process";
import * as z from "zod";
import { exportPublicKey, importPublicKey, keyIdOf } from "../contract/keys.js";
import { verifyNodeRequest } from "../contract/node-request.js";
import { AgentStateStore } from "../node-agent/src/agent-state.js";
import { loadOrCreateIdentity } from "../node-agent/src/identity.js";
import { buildAgent } from "../node-agent/packaging/build.js";
import { bundleAgent } from "../node-agent/packaging/bundle.js";
import { outputs } from "../node-agent/packaging/layout.js";
import { runTool } from "../node-agent/packaging/run-tool.js";
import { ServiceBusEmulator, signSasToken } from "../test/servicebus-emulator/index.js";
import { hostTierAvailability } from "../test/host/availability.js";
import { enableDrain, measureDrain, measureResident, resetLatency } from "../test/host/footprint.js";
import { AGENT_UNIT, startHostWorld } from "../test/host/host-world.js";
import { runBench } from "./support/main.js";

/** Azure Arc connected machine agent, as published by Microsoft ("agent resource usage" in the Arc docs). */
const ARC_AGENT_PUBLISHED = { rssMb: 42, cpuPercent: 0.02 };

const Flags = z.strictObject({
  where: z.enum(["host", "process"]).optional(),
  mode: z.enum(["resident", "drain", "both"]).default("both"),
  seconds: z.coerce.number().int().min(1).max(3600).optional(),
  settle: z.coerce.number().int().min(0).max(600).optional(),
  drainSeconds: z.coerce.number().int().min(5).max(3600).optional(),
  subject: z.enum(["bundle", "sea", "baseline"]).default("bundle"),
  /** NODE_OPTIONS for the subject, to compare V8 settings (e.g. "--max-semi-space-size=1"). */
  nodeOptions: z.string().optional(),
});

function parseFlags(args: readonly string[]): z.infer<typeof Flags> {
  const raw: Record<string, string> = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--quick") continue;
    if (!arg.startsWith("--") || args[i + 1] === undefined)
      throw new Error(
        `unexpected argument ${arg} (flags: --where host|process, --mode resident|drain|both, --seconds N, --settle N, --drain-seconds N, --subject bundle|sea|baseline, --node-options '...')`,
      );
    raw[arg.slice(2).replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())] = args[++i]!;
  }
  const parsed = Flags.safeParse(raw);
  if (!parsed.success) throw new Error(parsed.error.issues.map((i) => `--${i.path.join(".") || "?"}: ${i.message}`).join("; "));
  return parsed.data;
}

const NODE_QUEUE = "node-bench-1";
const RESULTS_QUEUE = "node-results";
const API = { statusPath: "/api/node/status", mailboxCredentialsPath: "/api/node/mailbox-credentials" };

interface Sample {
  ticks: number;
  rssKb: number;
  hwmKb: number;
  /** RSS split: private memory, and pages of mapped files (the executable; shared with the page cache). */
  anonKb: number;
  fileKb: number;
}

async function sample(pid: number): Promise<Sample> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  // Fields after the parenthesised command name (which may contain spaces): state is field 3, utime 14, stime 15.
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const kb = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
  return { ticks: Number(rest[11]) + Number(rest[12]), rssKb: kb("VmRSS"), hwmKb: kb("VmHWM"), anonKb: kb("RssAnon"), fileKb: kb("RssFile") };
}

async function clockTicksPerSecond(): Promise<number> {
  try {
    const { stdout } = await runTool("getconf", ["CLK_TCK"]);
    return Number(stdout.trim()) || 100;
  } catch {
    return 100;
  }
}

/** The node API an idle agent calls on start: its status and fresh mailbox credentials, each request node-signed. */
async function startNodeApi(options: {
  nodeKey: KeyObject;
  credentials: () => object;
  status: object;
}): Promise<{ url: string; calls: string[]; close(): Promise<void> }> {
  const calls: string[] = [];
  const keyId = keyIdOf(options.nodeKey);
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const reply = (status: number, json: object): void => {
      res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(json));
    };
    try {
      await verifyNodeRequest(
        { method: req.method ?? "GET", url: req.url ?? "/", headers: req.headers, body },
        { lookupPublicKey: (id) => (id === keyId ? options.nodeKey : undefined), now: new Date() },
      );
    } catch (error) {
      calls.push(`${req.method} ${req.url} -> 401`);
      return reply(401, { type: "bad-signature", title: (error as Error).message });
    }
    calls.push(`${req.method} ${req.url}`);
    if (req.method === "POST" && req.url === API.mailboxCredentialsPath) return reply(200, options.credentials());
    if (req.method === "GET" && req.url === API.statusPath) return reply(200, options.status);
    reply(404, { type: "not-found", title: `${req.method} ${req.url}` });
  };
  const server = createServer((req, res) => void handle(req, res));
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A bare idle receiver in the agent's build style: what the Service Bus SDK and Node cost before any agent logic. */
const BASELINE_RECEIVER = `
  import { AzureSASCredential } from "@azure/core-auth";
  import { ServiceBusClient } from "@azure/service-bus";
  const client = new ServiceBusClient(process.env.SB_NAMESPACE, new AzureSASCredential(process.env.SB_LISTEN));
  const receiver = client.createReceiver(process.env.SB_QUEUE, { receiveMode: "peekLock" });
  const subscription = receiver.subscribe({ processMessage: async () => {}, processError: async (a) => console.error(a.error.message) }, { autoCompleteMessages: false });
  process.once("SIGTERM", () => void subscription.close().then(() => client.close()).then(() => process.exit(0)));`;

async function stopChild(child: ChildProcess): Promise<number | string | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode ?? child.signalCode;
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
  const [code, signal] = (await once(child, "exit")) as [number | null, NodeJS.Signals | null];
  clearTimeout(timer);
  return code ?? signal;
}

async function agentFootprint(options: { quick: boolean; args: readonly string[] }): Promise<Record<string, unknown>> {
  const flags = parseFlags(options.args);
  const availability = await hostTierAvailability();
  const where = flags.where ?? (availability.ok ? "host" : "process");
  if (where === "host") {
    if (!availability.ok) throw new Error(`--where host: ${availability.reason}`);
    return hostFootprint(flags, options.quick);
  }
  const result = await processFootprint(flags, options.quick);
  return {
    where,
    ...(flags.where === undefined && !availability.ok ? { hostTierUnavailable: availability.reason } : {}),
    ...(flags.mode !== "resident" ? { drainNotMeasured: "drain mode needs systemd: --where host" } : {}),
    ...result,
  };
}

/** On the real-host tier's machine: resident, then drain mode, on a node onboarded to Ready by the whole service. */
async function hostFootprint(flags: z.infer<typeof Flags>, quick: boolean): Promise<Record<string, unknown>> {
  const workDir = await mkdtemp("/var/tmp/flexnode-footprint-");
  const world = await startHostWorld({ workDir, timing: { resetWaitMs: 120_000 }, log: (line) => console.error(line) });
  try {
    await world.boot();
    const { machine, stack } = world;
    const { enrolmentUrl } = await stack.createToken({ maxUses: 1 });
    const since = new Date().toISOString();
    const enrol = JSON.parse((await machine.exec(["flexnode-agent", "--output", "json", "enrol", "--url", enrolmentUrl])).stdout) as {
      enrolment: { nodeId: string };
    };
    const nodeId = enrol.enrolment.nodeId;
    await machine.exec(["systemctl", "enable", "--now", AGENT_UNIT]);
    const saga = await stack.harness.simulator.waitFor(nodeId, { timeoutMs: 240_000 });
    if ((saga.output as { status?: string } | null)?.status !== "Ready" || saga.createdTime < since)
      throw new Error(`the node did not reach Ready: ${JSON.stringify(saga.output)}`);
    const hz = await clockTicksPerSecond();
    const systemd = (await machine.exec(["systemctl", "--version"])).stdout.split("\n")[0];
    const payload = world.agentBuild.sysext.payload;
    const result: Record<string, unknown> = {
      where: "host",
      machine: {
        os: `${world.image.manifest.osRelease.id} ${world.image.manifest.osRelease.versionId}`,
        systemd,
        agent: payload === "sea" ? "single executable from the sysext image" : "node + bundle from the sysext image",
      },
    };
    if (flags.mode !== "drain")
      result["resident"] = await measureResident(world, { settleSeconds: flags.settle ?? (quick ? 1 : 30), seconds: flags.seconds ?? (quick ? 5 : 60), hz });
    if (flags.mode !== "resident") {
      await enableDrain(world, quick ? { timerSeconds: 5 } : {});
      const drain = await measureDrain(world, { seconds: flags.drainSeconds ?? (quick ? 15 : 160), hz });
      // Requested right after the window's last run ended: the timer's whole period lies ahead, the worst case.
      const latency = await resetLatency(world, nodeId);
      result["drain"] = { ...drain, ...latency };
    }
    return { ...result, clockTicksPerSecond: hz, arcAgentPublished: ARC_AGENT_PUBLISHED };
  } finally {
    await world.close();
    await rm(workDir, { recursive: true, force: true });
  }
}

async function processFootprint(flags: z.infer<typeof Flags>, quick: boolean): Promise<Record<string, unknown>> {
  const options = { quick };
  const seconds = flags.seconds ?? (options.quick ? 5 : 60);
  const settleSeconds = flags.settle ?? (options.quick ? 1 : 30);
  const build = await buildAgent({ log: () => undefined });

  const listen = { name: "flexnode-node-listen", key: randomBytes(32).toString("base64"), rights: ["Listen" as const] };
  const send = { name: "flexnode-node-send", key: randomBytes(32).toString("base64"), rights: ["Send" as const] };
  const emulator = new ServiceBusEmulator({
    rules: [{ name: "RootManageSharedAccessKey", key: "SAS_KEY_VALUE", rights: ["Manage"] }, listen, send],
    queues: [
      { name: NODE_QUEUE, lockDuration: "PT1M" },
      { name: RESULTS_QUEUE, lockDuration: "PT30S" },
    ],
  });
  const sb = await emulator.start();
  const work = await mkdtemp(join(tmpdir(), "flexnode-footprint-"));
  let child: ChildProcess | undefined;
  let api: Awaited<ReturnType<typeof startNodeApi>> | undefined;
  try {
    const caFile = join(work, "servicebus-ca.pem");
    await writeFile(caFile, sb.ca);
    // Tokens outlive the run by far, so the idle window never includes a credential refresh.
    const expiresAt = new Date(Date.now() + 6 * 3600_000);
    const credentials = () => ({
      namespace: sb.tlsNamespace,
      queue: NODE_QUEUE,
      resultsQueue: RESULTS_QUEUE,
      listenSas: signSasToken({
        resourceUri: `${sb.endpoint}/${NODE_QUEUE}`,
        keyName: listen.name,
        key: listen.key,
        expiresAtSeconds: Math.floor(expiresAt.getTime() / 1000),
      }),
      sendSas: signSasToken({
        resourceUri: `${sb.endpoint}/${RESULTS_QUEUE}`,
        keyName: send.name,
        key: send.key,
        expiresAtSeconds: Math.floor(expiresAt.getTime() / 1000),
      }),
      expiresAt: expiresAt.toISOString(),
      refreshAfter: new Date(expiresAt.getTime() - 3600_000).toISOString(),
    });

    // The node as `enrol` leaves it: identity key and state.json under --root, written by the agent's own code.
    const root = join(work, "root");
    await mkdir(root, { recursive: true });
    const identity = await loadOrCreateIdentity(root);
    const service = generateKeyPairSync("ed25519").publicKey;
    const nodeId = `node-${randomUUID().slice(0, 8)}`;
    const status = { nodeId, pool: "bench", status: "Onboarding", updatedAt: new Date().toISOString() };
    api = await startNodeApi({ nodeKey: importPublicKey(identity.publicKey), credentials, status });
    await new AgentStateStore(root).save({
      version: 1,
      nodeId,
      pool: "bench",
      keyId: identity.keyId,
      serviceUrl: api.url,
      service: { publicKey: exportPublicKey(service), keyId: keyIdOf(service) },
      nodeApi: API,
      poll: { intervalSeconds: 30 },
      status: "Onboarding",
      enrolledAt: new Date().toISOString(),
      results: [],
    });

    const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", NODE_EXTRA_CA_CERTS: caFile, ...(flags.nodeOptions ? { NODE_OPTIONS: flags.nodeOptions } : {}) };
    const launch = async (
      subject: "bundle" | "sea" | "baseline",
    ): Promise<{ child: ChildProcess; stderr: () => string; output: { lines: number; last: string } }> => {
      let command: string;
      let args: string[];
      let extraEnv: Record<string, string> = {};
      if (subject === "baseline") {
        const script = join(work, "baseline-receiver.mjs");
        await bundleAgent({
          source: { stdin: { contents: BASELINE_RECEIVER, sourcefile: "node-agent/bench-baseline-receiver.ts" } },
          format: "esm",
          outfile: script,
        });
        [command, args] = [process.execPath, [script]];
        extraEnv = { SB_NAMESPACE: sb.tlsNamespace, SB_QUEUE: NODE_QUEUE, SB_LISTEN: credentials().listenSas };
      } else if (subject === "sea") {
        if (!build.sea.built) throw new Error(`no single executable to measure: ${build.sea.reason}`);
        [command, args] = [outputs.sea, ["run", "--root", root]];
      } else [command, args] = [process.execPath, [outputs.bundle, "run", "--root", root]];
      const proc = spawn(command, args, { cwd: work, env: { ...env, ...extraEnv }, stdio: ["ignore", "pipe", "pipe"] });
      let stderr = "";
      proc.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr = (stderr + d).slice(-4000)));
      // What the agent logs (journald on a node) is part of its idle cost: count it.
      const output = { lines: 0, last: "" };
      proc.stdout!.setEncoding("utf8").on("data", (d: string) => {
        const lines = d.split("\n").filter(Boolean);
        output.lines += lines.length;
        output.last = lines.at(-1) ?? output.last;
      });
      return { child: proc, stderr: () => stderr, output };
    };

    /** Ready = the subject's receiver link is attached to its queue (the emulator logs it), whatever it prints. */
    const connected = async (proc: ChildProcess): Promise<boolean> => {
      const exited = once(proc, "exit").then(() => false);
      const attached = emulator.log
        .waitFor("linkAttached", (e) => e.role === "receive" && e.entityPath.toLowerCase() === NODE_QUEUE, 30_000)
        .then(
          () => true,
          () => false,
        );
      return Promise.race([attached, exited]);
    };

    let subject: "bundle" | "sea" | "baseline" = flags.subject;
    let note: string | undefined;
    let running = await launch(subject);
    if (!(await connected(running.child))) {
      const why = `\`${subject === "sea" ? "flexnode-agent" : "flexnode-agent.mjs"} run\` did not connect to its mailbox (exit ${String(await stopChild(running.child))}: ${running.stderr().trim().split("\n").slice(-2).join(" | ") || "no output"})`;
      if (subject === "baseline") throw new Error(why);
      note = `${why}; measured the baseline receiver instead`;
      console.error(`agent-footprint: ${note}`);
      subject = "baseline";
      emulator.log.clear();
      running = await launch(subject);
      if (!(await connected(running.child))) throw new Error(`the baseline receiver did not connect either: ${running.stderr()}`);
    }
    child = running.child;
    const pid = child.pid!;

    // Let start-up work finish before the window opens: module evaluation, TLS, the first CBS token put, lazy JIT,
    // and V8's memory reducer, which runs a few incremental GCs in the first ~20 s after start-up allocations.
    await new Promise((r) => setTimeout(r, settleSeconds * 1000));
    const hz = await clockTicksPerSecond();
    const linesBefore = running.output.lines + running.stderr().split("\n").filter(Boolean).length;
    const first = await sample(pid);
    const started = process.hrtime.bigint();
    const rss: number[] = [];
    for (let i = 0; i < seconds; i++) {
      await new Promise((r) => setTimeout(r, 1000));
      rss.push((await sample(pid)).rssKb);
    }
    const last = await sample(pid);
    const linesLoggedWhileIdle = running.output.lines + running.stderr().split("\n").filter(Boolean).length - linesBefore;
    const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
    const exit = await stopChild(child);
    child = undefined;

    const mb = (kb: number): number => Math.round((kb / 1024) * 10) / 10;
    const cpuPercent = ((last.ticks - first.ticks) / hz / elapsed) * 100;
    return {
      subject,
      ...(note ? { note } : {}),
      settleSeconds,
      idleSeconds: Math.round(elapsed * 10) / 10,
      rssMb: mb(last.rssKb),
      rssMbMax: mb(Math.max(...rss)),
      peakRssMb: mb(last.hwmKb),
      rssAnonMb: mb(last.anonKb),
      rssFileMb: mb(last.fileKb),
      cpuPercent: Math.round(cpuPercent * 1000) / 1000,
      cpuTicks: last.ticks - first.ticks,
      /** One clock tick over the window: the smallest non-zero cpuPercent this measurement can show. */
      cpuPercentResolution: Math.round((1 / hz / elapsed) * 100 * 1000) / 1000,
      ...(flags.nodeOptions ? { nodeOptions: flags.nodeOptions } : {}),
      clockTicksPerSecond: hz,
      arcAgentPublished: ARC_AGENT_PUBLISHED,
      linesLoggedWhileIdle,
      nodeApiCalls: api.calls,
      exitAfterSigterm: exit,
      bundleBytes: (await stat(outputs.bundle)).size,
      seaBytes: build.sea.built ? build.sea.bytes : null,
    };
  } finally {
    if (child) await stopChild(child);
    await api?.close();
    await emulator.stop();
    await rm(work, { recursive: true, force: true });
  }
}

runBench("agent-footprint", agentFootprint);
