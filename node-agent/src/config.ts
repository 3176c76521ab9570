/**
 * Operator settings: `/etc/flexnode/agent.json` under `--root`, then `FLEXNODE_*` environment variables, then command
 * line flags, each overriding the one before. Everything is parsed with zod at the boundary; a bad value stops the
 * agent with the file (or variable) and the field named, before anything is read from or written to the host.
 *
 * agent.json (it may hold the enrolment token) and the CA file (it decides whom TLS trusts) are refused when anyone
 * but their owner can write them, or, when the agent runs as root, when root does not own them; a token in an
 * agent.json every user can read is warned about.
 */
import { constants } from "node:fs";
import { open } from "node:fs/promises";
import * as z from "zod";
import { agentFiles, underRoot } from "./agent-files.js";
import { EnrolmentTokenSchema, parseEnrolmentUrl, ServiceUrlError } from "./enrolment-url.js";
import type { ArchiveLimits } from "./ports.js";

export const AgentConfigFileSchema = z.strictObject({
  $schema: z.string().optional(),
  enrolmentUrl: z.string().optional().describe("https://<service>/api/enrol#<token>; the token may also be given as `token`"),
  token: EnrolmentTokenSchema.optional(),
  caFile: z.string().startsWith("/", "must be an absolute path").optional().describe("Extra PEM CA bundle trusted for the service and artifact downloads"),
  maxStepMinutes: z.int().min(1).max(1440).optional().describe("Longest step the agent keeps a message lock for (default 60)"),
  mode: z
    .enum(["resident", "drain"])
    .optional()
    .describe(
      "resident (default): `run` stays connected; drain: once the node is Ready and its queue is quiet, `run` exits and flexnode-agent.timer starts it again",
    ),
  preflight: z.strictObject({ ignore: z.array(z.string().regex(/^[a-z0-9-]+$/, "must be a check name")).default([]) }).optional(),
  archive: z
    .strictObject({
      maxUnpackedMiB: z
        .int()
        .min(1)
        .max(1024 * 1024)
        .optional()
        .describe("Most bytes one tar.gz artifact may unpack, in MiB (default 4096)"),
      maxEntries: z.int().min(1).max(10_000_000).optional().describe("Most entries one tar.gz artifact may hold (default 20000)"),
    })
    .optional(),
});
export type AgentConfigFile = z.infer<typeof AgentConfigFileSchema>;

export const AgentEnvSchema = z.object({
  FLEXNODE_ROOT: z.string().min(1).optional(),
  FLEXNODE_ENROLMENT_URL: z.string().min(1).optional(),
  FLEXNODE_TOKEN: EnrolmentTokenSchema.optional(),
  FLEXNODE_CA_FILE: z.string().startsWith("/", "must be an absolute path").optional(),
  FLEXNODE_OUTPUT: z.enum(["human", "json"]).optional(),
  FLEXNODE_MODE: z.enum(["resident", "drain"]).optional(),
});
export type AgentEnv = z.infer<typeof AgentEnvSchema>;

export class ConfigError extends Error {
  readonly code = "bad_config";
  constructor(
    /** The file path or "environment". */
    readonly source: string,
    /** Dotted field name, e.g. "preflight.ignore.0". */
    readonly field: string,
    readonly problem: string,
  ) {
    super(`${source}: ${field}: ${problem}`);
    this.name = "ConfigError";
  }
}

function fromZod(source: string, error: z.ZodError): ConfigError {
  const issue = error.issues[0]!;
  const field = issue.path.map(String).join(".") || (issue.code === "unrecognized_keys" ? issue.keys.join(", ") : "(document)");
  // Unknown keys are reported by name: a typo ("enrollmentUrl") must not be silently ignored.
  if (issue.code === "unrecognized_keys") return new ConfigError(source, issue.keys.join(", "), "unknown setting");
  return new ConfigError(source, field, issue.message);
}

export function parseEnv(env: NodeJS.ProcessEnv): AgentEnv {
  const parsed = AgentEnvSchema.safeParse(env);
  if (!parsed.success) throw fromZod("environment", parsed.error);
  return parsed.data;
}

export type Warn = (line: string) => void;

const octal = (mode: number) => mode.toString(8).padStart(4, "0");

/**
 * Reads a file the agent trusts, checking the very file it reads (one open file descriptor; O_NONBLOCK so a FIFO
 * cannot hang the agent). Throws ConfigError(source, field, …) when it is not a regular file, is writable by group
 * or others, or, when running as root, is not owned by root; `what` names it in the message ("" for the source
 * itself). undefined when it does not exist.
 */
async function readTrustedFile(fsPath: string, what: string, source: string, field: string): Promise<{ text: string; mode: number } | undefined> {
  const refuse = (problem: string) => new ConfigError(source, field, what ? `${what} ${problem}` : problem);
  let handle;
  try {
    handle = await open(fsPath, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw refuse(`cannot be read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  try {
    const st = await handle.stat();
    const mode = st.mode & 0o7777;
    if (!st.isFile()) throw refuse("is not a regular file");
    if ((mode & 0o022) !== 0) {
      const who = (mode & 0o022) === 0o022 ? "group and others" : mode & 0o020 ? "its group" : "others";
      throw refuse(`is writable by ${who} (mode ${octal(mode)}), so it cannot be trusted: chmod go-w it`);
    }
    if (process.getuid?.() === 0 && st.uid !== 0) throw refuse(`is owned by uid ${st.uid}, not root, so it cannot be trusted: chown root it`);
    return { text: await handle.readFile("utf8"), mode };
  } finally {
    await handle.close();
  }
}

/** The config file's settings, or `{}` when there is no file. */
export async function loadConfigFile(root: string, warn: Warn = () => undefined): Promise<AgentConfigFile> {
  const path = agentFiles(root).configFile;
  const read = await readTrustedFile(path, "", path, "(file)");
  if (!read) return {};
  const { text, mode } = read;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(path, "(document)", `is not JSON: ${(error as Error).message}`);
  }
  const parsed = AgentConfigFileSchema.safeParse(json);
  if (!parsed.success) throw fromZod(path, parsed.error);
  if (parsed.data.enrolmentUrl !== undefined) {
    try {
      parseEnrolmentUrl(parsed.data.enrolmentUrl, "enrolmentUrl");
    } catch (error) {
      if (error instanceof ServiceUrlError) throw new ConfigError(path, error.field, error.message.slice(error.field.length + 2));
      throw error;
    }
  }
  if (parsed.data.token !== undefined && (mode & 0o004) !== 0)
    warn(`${path} holds an enrolment token and every user can read it (mode ${octal(mode)}): chmod 600 it`);
  return parsed.data;
}

export interface ResolvedConfig {
  root: string;
  enrolmentUrl?: string;
  token?: string;
  /** PEM text of the extra CA bundle, when configured. */
  ca?: string;
  maxStepMs: number;
  preflightIgnore: string[];
  /** Caps on unpacked archives, when agent.json sets any (the executors' defaults apply otherwise). */
  archiveLimits?: ArchiveLimits;
  mode: AgentMode;
}

/** resident: `run` holds its mailbox open; drain: `run` exits once the node is Ready and its queue is quiet. */
export type AgentMode = "resident" | "drain";

export interface ConfigOverrides {
  enrolmentUrl?: string;
  token?: string;
  caFile?: string;
  mode?: AgentMode;
}

/** File, then environment, then flags. The CA file is a host path under `root`. `warn` gets what is unsafe but not refused. */
export async function resolveConfig(root: string, env: AgentEnv, flags: ConfigOverrides = {}, warn?: Warn): Promise<ResolvedConfig> {
  const file = await loadConfigFile(root, warn);
  const caFile = flags.caFile ?? env.FLEXNODE_CA_FILE ?? file.caFile;
  let ca: string | undefined;
  if (caFile !== undefined) {
    const source = flags.caFile !== undefined ? "--ca-file" : env.FLEXNODE_CA_FILE !== undefined ? "environment" : agentFiles(root).configFile;
    const read = await readTrustedFile(underRoot(root, caFile), caFile, source, "caFile");
    if (!read) throw new ConfigError(source, "caFile", `${caFile} cannot be read: ENOENT`);
    ca = read.text;
    if (!ca.includes("-----BEGIN CERTIFICATE-----")) throw new ConfigError(source, "caFile", `${caFile} holds no PEM certificate`);
  }
  const enrolmentUrl = flags.enrolmentUrl ?? env.FLEXNODE_ENROLMENT_URL ?? file.enrolmentUrl;
  const token = flags.token ?? env.FLEXNODE_TOKEN ?? file.token;
  return {
    root,
    ...(enrolmentUrl !== undefined ? { enrolmentUrl } : {}),
    ...(token !== undefined ? { token } : {}),
    ...(ca !== undefined ? { ca } : {}),
    maxStepMs: (file.maxStepMinutes ?? 60) * 60_000,
    preflightIgnore: file.preflight?.ignore ?? [],
    ...(file.archive ? { archiveLimits: archiveLimitsOf(file.archive) } : {}),
    mode: flags.mode ?? env.FLEXNODE_MODE ?? file.mode ?? "resident",
  };
}

function archiveLimitsOf(a: NonNullable<AgentConfigFile["archive"]>): ArchiveLimits {
  return {
    ...(a.maxUnpackedMiB !== undefined ? { maxUnpackedBytes: a.maxUnpackedMiB * 1024 ** 2 } : {}),
    ...(a.maxEntries !== undefined ? { maxEntries: a.maxEntries } : {}),
  };
}
