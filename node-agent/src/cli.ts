/**
 * The `flexnode-agent` command line: arguments parsed with node:util parseArgs and then zod, settings resolved
 * (agent.json, FLEXNODE_* environment, flags), the command run, and every failure mapped to a documented exit code.
 */
import { parseArgs } from "node:util";
import * as z from "zod";
import { ContractError } from "../../contract/errors.js";
import { PreflightCheckNameSchema } from "../../contract/step-params.js";
import { agentStatus, DRAIN_DEFAULTS, enrolAgent, MissingTokenError, runAgent, type HostSide } from "./agent.js";
import { AgentBusyError, acquireAgentLock } from "./agent-lock.js";
import { AgentStateStore, NotEnrolledError, StateError } from "./agent-state.js";
import { ConfigError, parseEnv, resolveConfig } from "./config.js";
import { EnrolmentTokenSchema, ServiceUrlError } from "./enrolment-url.js";
import { EXIT, type ExitCode } from "./exit-codes.js";
import { FactsError } from "./facts.js";
import { realHostCommands } from "./host-commands.js";
import { IdentityError } from "./identity.js";
import { NoMailboxError } from "./mailbox-loop.js";
import { messageOf } from "./message-of.js";
import { createOutput, type Output, type OutputMode } from "./output.js";
import type { HostCommands } from "./ports.js";
import { runPreflight } from "./preflight.js";
import { InsecurePermissionsError } from "./private-files.js";
import { resetAll } from "./reset.js";
import { ServiceRefusedError } from "./service-errors.js";

export const AGENT_VERSION = "0.1.0";

export interface CliIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
  /** Aborted on SIGTERM/SIGINT (main.ts); `run` stops cleanly when it fires. */
  signal?: AbortSignal;
  /** Host programs (default: the real ones) and executors (default: run-step.ts), for the sandbox and tests. */
  host?: HostCommands;
  hostSide?: HostSide;
}

const USAGE = `usage: flexnode-agent [--root DIR] [--output human|json] <command> [options]

commands:
  enrol [--url URL] [--token TOKEN] [--ca-file PATH]   enrol this machine (URL: https://<service>/api/enrol#<token>)
  run [--ca-file PATH] [--mode resident|drain]         run the service loop (the systemd service)
  status                                               identity, node, mailbox and steps, from local files
  preflight [--ignore a,b]                             check this machine can become a node
  reset                                                undo every change the agent recorded
  version                                              print the agent version
`;

const COMMANDS = ["enrol", "enroll", "run", "status", "preflight", "reset", "version", "help"] as const;

const CliArgsSchema = z.strictObject({
  command: z.enum(COMMANDS, { message: `must be one of ${COMMANDS.filter((c) => c !== "enroll").join(", ")}` }),
  root: z.string().min(1).optional(),
  output: z.enum(["human", "json"]).optional(),
  url: z.string().min(1).optional(),
  token: EnrolmentTokenSchema.optional(),
  caFile: z.string().startsWith("/", "must be an absolute path").optional(),
  mode: z.enum(["resident", "drain"]).optional(),
  ignore: z.array(PreflightCheckNameSchema).default([]),
});
type CliArgs = z.infer<typeof CliArgsSchema>;

class UsageError extends Error {
  readonly code = "usage";
}

function parseCli(argv: readonly string[]): CliArgs {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        root: { type: "string" },
        output: { type: "string" },
        url: { type: "string" },
        token: { type: "string" },
        "ca-file": { type: "string" },
        mode: { type: "string" },
        ignore: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const { values, positionals } = parsed;
  if (positionals.length > 1) throw new UsageError(`unexpected argument: ${positionals[1]}`);
  const candidate = {
    command: values.help ? "help" : (positionals[0] ?? "help"),
    ...(values.root !== undefined ? { root: values.root } : {}),
    ...(values.output !== undefined ? { output: values.output } : {}),
    ...(values.url !== undefined ? { url: values.url } : {}),
    ...(values.token !== undefined ? { token: values.token } : {}),
    ...(values["ca-file"] !== undefined ? { caFile: values["ca-file"] } : {}),
    ...(values.mode !== undefined ? { mode: values.mode } : {}),
    ...(values.ignore !== undefined
      ? {
          ignore: values.ignore
            .split(",")
            .map((s) => s.trim())
            .filter(Boolean),
        }
      : {}),
  };
  const result = CliArgsSchema.safeParse(candidate);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const flag = issue.path[0] === "command" ? "command" : `--${String(issue.path[0] ?? "").replace("caFile", "ca-file")}`;
    throw new UsageError(`${flag}: ${issue.message}`);
  }
  return result.data;
}

function exitCodeOf(error: unknown): ExitCode {
  if (error instanceof UsageError || error instanceof MissingTokenError || error instanceof ServiceUrlError) return EXIT.usage;
  if (error instanceof ConfigError) return EXIT.config;
  if (error instanceof InsecurePermissionsError || error instanceof IdentityError || error instanceof StateError) return EXIT.insecure;
  if (error instanceof NotEnrolledError) return EXIT.notEnrolled;
  if (error instanceof ServiceRefusedError) return EXIT.refused;
  if (error instanceof NoMailboxError) return EXIT.noMailbox;
  if (error instanceof AgentBusyError) return EXIT.busy;
  return EXIT.failed;
}

function describeError(error: unknown): { code: string; message: string; [extra: string]: unknown } {
  const message = messageOf(error);
  const code = (error as { code?: unknown }).code;
  const base = { code: typeof code === "string" ? code : "error", message };
  if (error instanceof ConfigError) return { ...base, source: error.source, field: error.field };
  if (error instanceof ServiceUrlError || error instanceof FactsError) return { ...base, field: error.field };
  if (error instanceof ServiceRefusedError) return { ...base, status: error.status, problem: error.problem };
  if (error instanceof InsecurePermissionsError) return { ...base, path: error.path };
  if (error instanceof ContractError) return base;
  return base;
}

export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  // JSON errors as soon as JSON is asked for, even when what fails is a later flag or the environment.
  const flagAt = argv.indexOf("--output");
  const wantsJson = argv.includes("--output=json") || (flagAt >= 0 && argv[flagAt + 1] === "json") || io.env["FLEXNODE_OUTPUT"] === "json";
  let out: Output = createOutput(wantsJson ? "json" : "human", io.stdout, io.stderr);
  try {
    const env = parseEnv(io.env);
    const args = parseCli(argv);
    const mode: OutputMode = args.output ?? env.FLEXNODE_OUTPUT ?? "human";
    out = createOutput(mode, io.stdout, io.stderr);
    const root = args.root ?? env.FLEXNODE_ROOT ?? "/";
    return await run(args, root, env, io, out);
  } catch (error) {
    out.error(describeError(error));
    return exitCodeOf(error);
  }
}

async function run(args: CliArgs, root: string, env: ReturnType<typeof parseEnv>, io: CliIo, out: Output): Promise<number> {
  // Unsafe but not refused (a token in a world-readable agent.json): a line on stderr, i.e. in the journal under systemd.
  const warn = (line: string) => void io.stderr.write(`warning: ${line}\n`);
  switch (args.command) {
    case "help":
      io.stdout.write(USAGE);
      return EXIT.ok;
    case "version":
      out.result({ version: AGENT_VERSION }, () => [`flexnode-agent ${AGENT_VERSION}`]);
      return EXIT.ok;
    case "status": {
      // Checked although status needs none of it: a broken agent.json should surface before `run` trips over it.
      await resolveConfig(root, env, {}, warn);
      const s = await agentStatus(root);
      out.result({ status: s }, () => renderStatus(s));
      return EXIT.ok;
    }
    case "enrol":
    case "enroll": {
      const config = await resolveConfig(
        root,
        env,
        { ...pick(args, "url", "enrolmentUrl"), ...pick(args, "token", "token"), ...pick(args, "caFile", "caFile") },
        warn,
      );
      if (config.enrolmentUrl === undefined)
        throw new UsageError("no enrolment URL: pass --url https://<service>/api/enrol#<token> or set enrolmentUrl in /etc/flexnode/agent.json");
      const result = await enrolAgent({
        root,
        url: config.enrolmentUrl,
        ...(config.token !== undefined ? { token: config.token } : {}),
        ...(config.ca !== undefined ? { ca: config.ca } : {}),
        ...(io.signal ? { signal: io.signal } : {}),
        onProgress: (line) => out.progress(line),
      });
      const { facts, ...summary } = result;
      out.result({ enrolment: { ...summary, hostname: facts.hostname, immutable: facts.immutable } }, () => [
        result.httpStatus === 202
          ? `enrolled as ${result.nodeId}; waiting for approval (${result.approval ?? "approval required"}). Start the agent (flexnode-agent run); it continues once approved.`
          : `${result.httpStatus === 200 ? "already enrolled" : "enrolled"} as ${result.nodeId} in pool ${result.pool}. Start the agent: systemctl enable --now flexnode-agent (or flexnode-agent run).`,
      ]);
      return EXIT.ok;
    }
    case "run": {
      const config = await resolveConfig(root, env, { ...pick(args, "caFile", "caFile"), ...pick(args, "mode", "mode") }, warn);
      const signal = io.signal ?? new AbortController().signal;
      await runAgent({
        root,
        host: io.host ?? realHostCommands(),
        hostSide: io.hostSide ?? (await import("./host-side.js")).realHostSide,
        ...(config.ca !== undefined ? { ca: config.ca } : {}),
        signal,
        maxStepMs: config.maxStepMs,
        ...(config.archiveLimits ? { archiveLimits: config.archiveLimits } : {}),
        ...(config.mode === "drain" ? { drain: DRAIN_DEFAULTS } : {}),
        onEvent: (event) => out.event(event, new Date()),
      });
      return EXIT.ok;
    }
    case "preflight": {
      const config = await resolveConfig(root, env, pick(args, "caFile", "caFile"), warn);
      const report = await runPreflight({
        root,
        host: io.host ?? realHostCommands(),
        ignore: [...config.preflightIgnore, ...args.ignore],
        ...(config.ca !== undefined ? { ca: config.ca } : {}),
        now: () => new Date(),
      });
      out.result({ preflight: report }, () => [
        ...report.checks.map((c) => `${{ pass: "✓", warn: "!", fail: "✗", skipped: "-" }[c.status]} ${c.name}: ${c.detail}`),
        report.ok ? "preflight passed" : "preflight failed",
      ]);
      return report.ok ? EXIT.ok : EXIT.preflightFailed;
    }
    case "reset": {
      await resolveConfig(root, env, {}, warn);
      const lock = await acquireAgentLock(root, "reset");
      let report: Awaited<ReturnType<typeof resetAll>>;
      try {
        report = await resetAll({ root, host: io.host ?? realHostCommands(), log: (line) => out.progress(line), now: () => new Date() });
        // As after a reset step: results remembered for redelivery would report as applied what was just undone.
        const store = new AgentStateStore(root);
        if (report.failed.length === 0 && (await store.load())) await store.update((s) => ({ ...s, results: [] }));
      } finally {
        await lock.release();
      }
      out.result({ reset: report }, () => [
        ...report.undone.map((u) => `undone (${u.stepId}): ${u.change}`),
        ...report.failed.map((f) => `NOT undone (${f.stepId}): ${f.change}: ${f.error}`),
        ...report.left.map((l) => `left in place (${l.stepId}): ${l.path}: ${l.why}`),
        report.failed.length === 0
          ? `reset complete (${report.undone.length} changes undone)`
          : `reset incomplete: ${report.failed.length} changes remain; run reset again`,
      ]);
      return report.failed.length === 0 ? EXIT.ok : EXIT.failed;
    }
  }
}

function pick<K extends keyof CliArgs, T extends string>(args: CliArgs, key: K, as: T): { [P in T]?: NonNullable<CliArgs[K]> } {
  const value = args[key];
  return (value === undefined ? {} : { [as]: value }) as { [P in T]?: NonNullable<CliArgs[K]> };
}

function renderStatus(s: Awaited<ReturnType<typeof agentStatus>>): string[] {
  const lines = [`identity:  ${s.identity ? `node key ${s.identity.keyId}` : "none yet (created by enrol)"}`];
  if (!s.node) return [...lines, "enrolment: not enrolled (flexnode-agent enrol --url <enrolment URL>)"];
  lines.push(
    `node:      ${s.node.nodeId} in pool ${s.node.pool}, last known status ${s.node.status}${s.node.approval ? ` (${s.node.approval})` : ""}`,
    `service:   ${s.node.serviceUrl}`,
  );
  lines.push(s.mailbox ? `mailbox:   ${s.mailbox.queue}; tokens valid until ${s.mailbox.credentialsExpireAt}` : "mailbox:   none yet");
  if (s.currentStep)
    lines.push(`current:   ${s.currentStep.stepId} (${s.currentStep.kind}, attempt ${s.currentStep.attempt}) since ${s.currentStep.startedAt}`);
  for (const r of s.recentResults)
    lines.push(`step:      ${r.stepId} attempt ${r.attempt}: ${r.outcome}${r.errorCode ? ` (${r.errorCode})` : ""} at ${r.finishedAt}`);
  lines.push(`applied:   ${s.applied.length === 0 ? "nothing" : `${s.applied.length} changes`}`);
  for (const a of s.applied) lines.push(`  ${a.stepId}: ${a.change}`);
  return lines;
}
