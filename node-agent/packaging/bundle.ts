/**
 * The agent as one file: esbuild bundles node-agent/src and contract/ with their npm dependencies, so a node needs a
 * Node runtime (or the single executable) and nothing from npm. esbuild rather than a hand-written concatenation: it
 * resolves package exports/conditions, rewrites CommonJS dependencies (rhea, the Azure SDK's CJS builds) into the
 * ESM output and tree-shakes, in well under a second.
 */
import { mkdir } from "node:fs/promises";
import { dirname, relative } from "node:path";
import * as esbuild from "esbuild";
import { repoRoot } from "./layout.js";
import { writeIfChanged } from "./write-file.js";

export type BundleFormat = "esm" | "cjs";

export type BundleSource = { entry: string } | { stdin: { contents: string; sourcefile: string } };

export interface BundleOptions {
  source: BundleSource;
  format: BundleFormat;
  outfile: string;
  /** Where the metafile (esbuild's record of every input) is written. */
  metafile?: string;
}

export interface BundleResult {
  outfile: string;
  bytes: number;
  metafile: esbuild.Metafile;
  warnings: string[];
}

const SHEBANG = "#!/usr/bin/env node\n";

/**
 * ESM output has no `require`; CommonJS dependencies bundled into it still call require("node:…") for builtins, which
 * esbuild routes through a shim that needs a real `require` in scope. The name of the import is unusual on purpose:
 * banner text is opaque to esbuild, so it must not collide with anything the bundle declares.
 */
const ESM_BANNER = 'import{createRequire as __flexnodeCreateRequire}from"node:module";const require=__flexnodeCreateRequire(import.meta.url);';

/**
 * CommonJS has no import.meta. Code that derives paths from import.meta.url (createRequire, fileURLToPath) gets the
 * file's own URL instead of esbuild's empty object; in a single executable __filename is the executable.
 */
const CJS_BANNER = 'var __flexnodeImportMetaUrl=require("node:url").pathToFileURL(__filename).href;';

export async function bundleAgent(options: BundleOptions): Promise<BundleResult> {
  const esm = options.format === "esm";
  const input: esbuild.BuildOptions =
    "entry" in options.source
      ? { entryPoints: [options.source.entry] }
      : { stdin: { contents: options.source.stdin.contents, sourcefile: options.source.stdin.sourcefile, resolveDir: repoRoot, loader: "ts" } };
  const result = await esbuild.build({
    ...input,
    absWorkingDir: repoRoot,
    bundle: true,
    platform: "node",
    target: "node20",
    format: options.format,
    minify: true,
    // Every dependency is inlined: a node gets one file and nothing from npm. Node builtins stay external (platform node).
    packages: "bundle",
    metafile: true,
    write: false,
    outfile: options.outfile,
    logLevel: "silent",
    // Licence comments of bundled packages are kept, collected at the end of the file.
    legalComments: "eof",
    define: { "process.env.NODE_ENV": '"production"', ...(esm ? {} : { "import.meta.url": "__flexnodeImportMetaUrl" }) },
    banner: { js: esm ? ESM_BANNER : CJS_BANNER },
  });
  const output = result.outputFiles.find((f) => f.path === options.outfile);
  if (!output) throw new Error(`esbuild produced no ${options.outfile}`);
  // The entry's own hashbang (if any) is kept by esbuild as the first line; add one when the entry has none.
  const text = esm && !output.text.startsWith("#!") ? SHEBANG + output.text : output.text;
  await mkdir(dirname(options.outfile), { recursive: true });
  await writeIfChanged(options.outfile, text, esm ? 0o755 : 0o644);
  if (options.metafile) await writeIfChanged(options.metafile, `${JSON.stringify(result.metafile, null, 1)}\n`);
  return {
    outfile: options.outfile,
    bytes: Buffer.byteLength(text),
    metafile: result.metafile,
    warnings: result.warnings.map((w) => `${w.location ? `${w.location.file}:${w.location.line}: ` : ""}${w.text}`),
  };
}

/**
 * Packages that belong to the service and must never ride along in the agent: they are large, pull in credentials
 * code the node has no use for, and their presence would mean an agent module imports service code.
 */
export const SERVICE_ONLY_PACKAGES: readonly RegExp[] = [
  /^@azure\/functions$/,
  /^durable-functions$/,
  /^@azure\/data-tables$/,
  /^@azure\/arm-/,
  /^@azure\/identity$/,
  /^@azure\/msal-/,
  /^@asteasolutions\/zod-to-openapi$/,
  /^azure-functions-core-tools$/,
];

/** Project folders the agent may bundle; anything else (functions/, orchestrations/, test/) is the service's. */
export const AGENT_SOURCE_DIRS: readonly string[] = ["node-agent/", "contract/"];

export interface InputReport {
  /** npm packages in the bundle, by name, with the bytes each contributes to the output. */
  packages: Record<string, number>;
  /** Project source files (relative to the repository). */
  sources: string[];
  violations: string[];
}

export function packageOf(input: string): string | undefined {
  const at = input.lastIndexOf("node_modules/");
  if (at === -1) return undefined;
  const parts = input.slice(at + "node_modules/".length).split("/");
  return parts[0]?.startsWith("@") ? `${parts[0]}/${parts[1] ?? ""}` : parts[0];
}

/** What went into a bundle, and every input that must not have. */
export function inspectInputs(metafile: esbuild.Metafile): InputReport {
  const packages: Record<string, number> = {};
  const sources: string[] = [];
  const violations: string[] = [];
  const contributed = new Map<string, number>();
  for (const output of Object.values(metafile.outputs)) {
    for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) contributed.set(input, (contributed.get(input) ?? 0) + bytesInOutput);
  }
  for (const input of Object.keys(metafile.inputs)) {
    const name = packageOf(input);
    if (name !== undefined) {
      packages[name] = (packages[name] ?? 0) + (contributed.get(input) ?? 0);
      if (SERVICE_ONLY_PACKAGES.some((p) => p.test(name))) violations.push(`service-only package ${name} (${input})`);
      continue;
    }
    const path = input.startsWith("/") ? relative(repoRoot, input) : input;
    sources.push(path);
    if (!AGENT_SOURCE_DIRS.some((dir) => path.startsWith(dir))) violations.push(`service source ${path}`);
  }
  return { packages, sources: sources.sort(), violations };
}

export class BundleContentError extends Error {
  readonly code = "bundle_content";
  constructor(readonly violations: readonly string[]) {
    super(`the agent bundle must not contain: ${violations.join("; ")}`);
    this.name = "BundleContentError";
  }
}
