/**
 * The real Bicep CLI for the infra tests: the binary `infra/tools/install-bicep.sh` restores from NuGet into
 * `.tools/bicep/bicep` (or `BICEP_BIN`), at the version pinned in `infra/tools/BICEP_VERSION`.
 *
 * `snapshot` evaluates a template with parameters the way a deployment would (resource ids, names, role assignment
 * scopes and conditions, api-versions), offline — values only Azure knows stay ARM expressions such as
 * `[reference(<id>, <api-version>).principalId]`. Snapshots are cached by content (CLI version, every .bicep file,
 * the parameters), so test files that share one pay for it once.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const INFRA = join(ROOT, "infra");
export const BICEP_VERSION = readFileSync(join(INFRA, "tools/BICEP_VERSION"), "utf8").trim();
const BIN = process.env.BICEP_BIN ?? join(ROOT, ".tools/bicep/bicep");

export interface BicepAvailability {
  ok: boolean;
  reason?: string;
}

let availability: Promise<BicepAvailability> | undefined;

/** Whether the pinned Bicep CLI is installed; CI must have it (`.ci/run` installs it). */
export function bicepAvailable(): Promise<BicepAvailability> {
  availability ??= (async () => {
    if (!existsSync(BIN)) return { ok: false, reason: `the Bicep CLI is not installed at ${relative(ROOT, BIN)} (run: bash infra/tools/install-bicep.sh)` };
    const { stdout } = await run(["--version"]);
    if (!stdout.includes(`Bicep CLI version ${BICEP_VERSION} `))
      return { ok: false, reason: `${relative(ROOT, BIN)} is not Bicep ${BICEP_VERSION}: ${stdout.trim()} (run: bash infra/tools/install-bicep.sh)` };
    return { ok: true };
  })();
  return availability;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(args: string[], cwd = ROOT): Promise<RunResult> {
  return new Promise((resolvePromise) => {
    execFile(BIN, args, { cwd, maxBuffer: 32 * 1024 * 1024, env: { ...process.env, DOTNET_CLI_TELEMETRY_OPTOUT: "1" } }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
      resolvePromise({ code, stdout, stderr });
    });
  });
}

/** Every .bicep file under infra/ (relative to the repository root). */
export function bicepFiles(dir = INFRA): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...bicepFiles(path));
    else if (entry.name.endsWith(".bicep")) out.push(relative(ROOT, path));
  }
  return out.sort();
}

export interface PredictedResource {
  id: string;
  type: string;
  name: string;
  apiVersion: string;
  location?: string;
  kind?: string;
  sku?: Record<string, unknown>;
  tags?: Record<string, string>;
  identity?: Record<string, unknown>;
  properties?: Record<string, unknown>;
}

export interface Snapshot {
  predictedResources: PredictedResource[];
  diagnostics: unknown[];
  outputs: Record<string, unknown>;
}

export interface SnapshotOptions {
  /** infra/<template>.bicep */
  template: "main" | "pool";
  /** Parameter values (bicepparam literals are generated from them). */
  params: Record<string, unknown>;
  subscriptionId: string;
  tenantId: string;
  location: string;
  resourceGroup?: string;
}

const CACHE = join(tmpdir(), "flexnode-bicep-snapshots");

export async function snapshot(options: SnapshotOptions): Promise<Snapshot> {
  const sources = bicepFiles()
    .map((f) => `${f}\n${readFileSync(join(ROOT, f), "utf8")}`)
    .join("\n");
  const key = createHash("sha256")
    .update(JSON.stringify([BICEP_VERSION, sources, readFileSync(join(INFRA, "bicepconfig.json"), "utf8"), options]))
    .digest("hex");
  const cached = join(CACHE, `${key}.json`);
  if (existsSync(cached)) return JSON.parse(await readFile(cached, "utf8")) as Snapshot;

  const dir = await mkdtemp(join(tmpdir(), "flexnode-snapshot-"));
  try {
    const template = join(INFRA, `${options.template}.bicep`);
    // `using` takes a relative path only.
    const lines = [`using '${relative(dir, template)}'`, ...Object.entries(options.params).map(([k, v]) => `param ${k} = ${bicepLiteral(v)}`)];
    await writeFile(join(dir, "test.bicepparam"), `${lines.join("\n")}\n`);
    const args = [
      "snapshot",
      "test.bicepparam",
      "--mode",
      "overwrite",
      "--subscription-id",
      options.subscriptionId,
      "--tenant-id",
      options.tenantId,
      "--location",
      options.location,
      "--config",
      join(INFRA, "bicepconfig.json"),
    ];
    if (options.resourceGroup) args.push("--resource-group", options.resourceGroup);
    const result = await run(args, dir);
    if (result.code !== 0) throw new Error(`bicep snapshot of ${options.template} failed (${result.code}):\n${result.stdout}${result.stderr}`);
    const text = await readFile(join(dir, "test.snapshot.json"), "utf8");
    await mkdir(CACHE, { recursive: true });
    const partial = `${cached}.${process.pid}`;
    await writeFile(partial, text);
    await rename(partial, cached);
    return JSON.parse(text) as Snapshot;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A value as a Bicep literal (objects, arrays, strings, numbers, booleans). */
export function bicepLiteral(value: unknown): string {
  if (typeof value === "string") return `'${value.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  if (Array.isArray(value)) return `[\n${value.map((v) => `  ${bicepLiteral(v)}`).join("\n")}\n]`;
  if (value !== null && typeof value === "object")
    return `{\n${Object.entries(value)
      .map(([k, v]) => `  ${/^[A-Za-z_][A-Za-z0-9_]*$/.test(k) ? k : bicepLiteral(k)}: ${bicepLiteral(v)}`)
      .join("\n")}\n}`;
  throw new Error(`no Bicep literal for ${String(value)}`);
}

/** The scope a role assignment's id names: everything before /providers/Microsoft.Authorization/roleAssignments/. */
export function roleAssignmentScope(id: string): string {
  const at = id.toLowerCase().lastIndexOf("/providers/microsoft.authorization/roleassignments/");
  if (at < 0) throw new Error(`not a role assignment id: ${id}`);
  return id.slice(0, at);
}

/** The role GUID of a roleDefinitionId (full id or bare GUID). */
export function roleGuid(roleDefinitionId: string): string {
  return roleDefinitionId.split("/").pop()!.toLowerCase();
}
