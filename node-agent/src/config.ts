/**
 * Operator settings: `/etc/flexnode/agent.json` under `--root`, then `FLEXNODE_*` environment variables, then command
 * line flags, each overriding the one before. Everything is parsed with zod at the boundary; a bad value stops the
 * agent with the file (or variable) and the field named, before anything is read from or written to the host.
 */
import { readFile } from "node:fs/promises";
import * as z from "zod";
import { agentFiles, underRoot } from "./agent-files.js";
import { EnrolmentTokenSchema, parseEnrolmentUrl, ServiceUrlError } from "./enrolment-url.js";

export const AgentConfigFileSchema = z.strictObject({
  $schema: z.string().optional(),
  enrolmentUrl: z.string().optional().describe("https://<service>/api/enrol#<token>; the token may also be given as `token`"),
  token: EnrolmentTokenSchema.optional(),
  caFile: z.string().startsWith("/", "must be an absolute path").optional().describe("Extra PEM CA bundle trusted for the service and artifact downloads"),
  maxStepMinutes: z.int().min(1).max(1440).optional().describe("Longest step the agent keeps a message lock for (default 60)"),
  mode: z.enum(["resident", "drain"]).optional().describe("resident (default): `run` stays connected; drain: once the node is Ready and its queue is quiet, `run` exits and flexnode-agent.timer starts it again"),
  preflight: z.strictObject({ ignore: z.array(z.string().regex(/^[a-z0-9-]+$/, "must be a check name")).default([]) }).optional(),
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

/** The config file's settings, or `{}` when there is no file. */
export async function loadConfigFile(root: string): Promise<AgentConfigFile> {
  const path = agentFiles(root).configFile;
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return {};
    throw new ConfigError(path, "(file)", `cannot be read: ${(error as Error).message}`);
  }
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

/** File, then environment, then flags. The CA file is a host path under `root`. */
export async function resolveConfig(root: string, env: AgentEnv, flags: ConfigOverrides = {}): Promise<ResolvedConfig> {
  const file = await loadConfigFile(root);
  const caFile = flags.caFile ?? env.FLEXNODE_CA_FILE ?? file.caFile;
  let ca: string | undefined;
  if (caFile !== undefined) {
    const source = flags.caFile !== undefined ? "--ca-file" : env.FLEXNODE_CA_FILE !== undefined ? "environment" : agentFiles(root).configFile;
    try {
      ca = await readFile(underRoot(root, caFile), "utf8");
    } catch (error) {
      throw new ConfigError(source, "caFile", `${caFile} cannot be read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
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
    mode: flags.mode ?? env.FLEXNODE_MODE ?? file.mode ?? "resident",
  };
}
