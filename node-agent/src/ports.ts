/**
 * The seams between the agent's parts, fixed first so they can be built separately: the step executors (which touch
 * the host) and the service loop (which talks to the service) meet only here.
 */
import type { JsonObject } from "../../contract/json.js";
import type { StepEnvelope } from "../../contract/step-envelope.js";
import type { StepError } from "../../contract/step-result.js";

/** The only host programs the agent ever runs. Real: execFile without a shell. Tests and the sandbox: a recorder. */
export type HostProgram = "systemctl" | "modprobe" | "sysctl" | "systemd-sysext";

export interface HostCommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface HostCommands {
  run(program: HostProgram, args: readonly string[]): Promise<HostCommandResult>;
}

/** One-time secrets (the bootstrap kubeconfig) come over the signed node API, never through the mailbox. */
export interface SecretSource {
  take(ref: string): Promise<string>;
}

export interface StepDeps {
  /** Every host path is resolved under this directory ("/" on a real node). */
  root: string;
  host: HostCommands;
  secrets: SecretSource;
  /** Extra PEM CA certificates trusted for artifact downloads (a private mirror, the sandbox). */
  ca?: string;
  /** Caps on what one archive may unpack (agent.json `archive`); the defaults are in executors/archive.ts. */
  archiveLimits?: ArchiveLimits;
  now(): Date;
  log(line: string): void;
}

export interface ArchiveLimits {
  /** Total bytes of the files one archive unpacks. */
  maxUnpackedBytes?: number;
  /** Entries in one archive, directories included. */
  maxEntries?: number;
}

export type StepRunResult = ({ outcome: "succeeded"; output: JsonObject } | { outcome: "failed"; error: StepError }) & {
  /** sha256:<hex> of the applied-state manifest after the step. */
  manifestDigest: string;
};

/** Runs one verified envelope's step, idempotently, recording every change in the manifest. Never throws for a step failure. */
export type RunStep = (envelope: StepEnvelope, deps: StepDeps) => Promise<StepRunResult>;

/** `preflight` (the CLI command and the preflight step kind share it). Implemented in node-agent/src/preflight.ts. */
export interface PreflightOptions {
  root: string;
  host: HostCommands;
  /** Check names to run (default: all); `ignore` turns a failure of the named checks into a warning. */
  checks?: readonly string[];
  ignore?: readonly string[];
  /** https://<fqdn>:443 of the cluster's API server, when known. */
  apiServer?: string;
  expectImmutable?: boolean;
  ca?: string;
  now(): Date;
}
export interface PreflightCheckResult {
  name: string;
  status: "pass" | "warn" | "fail" | "skipped";
  detail: string;
}
export interface PreflightReport {
  ok: boolean;
  checks: PreflightCheckResult[];
}
export type RunPreflight = (options: PreflightOptions) => Promise<PreflightReport>;

/** `reset` (the CLI command and the reset step kind): undo exactly what the manifest records. In node-agent/src/reset.ts. */
export interface ResetReport {
  undone: { stepId: string; change: string }[];
  /** Changes that could not be undone, kept in the manifest for the next reset. */
  failed: { stepId: string; change: string; error: string }[];
  /** Paths left in place rather than delete what the agent did not record (its change is done with: not recorded any more). */
  left: { stepId: string; change: string; path: string; why: string }[];
  manifestDigest: string;
}
export type ResetAll = (deps: Pick<StepDeps, "root" | "host" | "log" | "now">) => Promise<ResetReport>;
