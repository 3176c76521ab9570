/**
 * The agent as a Node single executable (SEA): a copy of the build machine's node binary with the CommonJS bundle
 * injected as a resource (postject) and the SEA fuse flipped. One file, no Node runtime needed on the node; the price
 * is the size of node itself (~86 MB stripped) and Node 20's SEA limits: CommonJS only (no ESM entry, no top-level
 * await), `require` reaches builtins only (hence the bundle), and the binary runs on hosts with the build machine's
 * architecture and a glibc/libstdc++ at least as new as node's official build needs.
 */
import { copyFile, chmod, mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { createRequire } from "node:module";
import { fileDigest, textDigest } from "./digest.js";
import { haveTool, runTool, ToolError } from "./run-tool.js";

/** The fuse Node's SEA support looks for (documented in Node's single-executable-applications guide). */
export const SEA_FUSE = "NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2";
const SEA_RESOURCE = "NODE_SEA_BLOB";
const POSTJECT_CLI = createRequire(import.meta.url).resolve("postject/dist/cli.js");

export interface SeaOptions {
  /** The CommonJS bundle to embed. */
  script: string;
  output: string;
  /** The node binary to copy (default: the one running the build). */
  nodeBinary?: string;
  /** Reuse `output` when it was built from the same inputs (the key recorded by the previous build). */
  previousKey?: string;
}

export type SeaOutcome =
  { built: true; key: string; bytes: number; stripped: boolean; reused: boolean; versionOutput: string } | { built: false; reason: string };

export async function buildSea(options: SeaOptions): Promise<SeaOutcome> {
  const nodeBinary = options.nodeBinary ?? process.execPath;
  const major = Number(process.versions.node.split(".")[0]);
  if (major < 20) return { built: false, reason: `Node ${process.versions.node} has no usable single-executable support (needs >= 20)` };
  const nodeInfo = await stat(nodeBinary);
  const canStrip = await haveTool("strip");
  const key = textDigest(await fileDigest(options.script), nodeBinary, String(nodeInfo.size), String(nodeInfo.mtimeMs), process.version, `strip=${canStrip}`);

  if (options.previousKey === key && (await exists(options.output))) {
    const smoke = await smokeTest(options.output);
    if (smoke.ok) return { built: true, key, bytes: (await stat(options.output)).size, stripped: canStrip, reused: true, versionOutput: smoke.output };
  }

  // A node linked against a shared libnode (Debian's package) or built without SEA support has no fuse to flip.
  const binary = await readFile(nodeBinary);
  if (!binary.includes(`${SEA_FUSE}:0`)) {
    return {
      built: false,
      reason: `${nodeBinary} carries no unflipped ${SEA_FUSE} fuse: not a Node build with single-executable support (e.g. a distribution's libnode-linked node); install node from nodejs.org to build the SEA`,
    };
  }

  await mkdir(dirname(options.output), { recursive: true });
  // Work next to the output so the final rename never crosses filesystems.
  const work = await mkdtemp(join(dirname(options.output), ".sea-"));
  try {
    const blob = join(work, "sea.blob");
    const config = join(work, "sea-config.json");
    // No code cache or snapshot: both depend on V8 state at build time and would make the executable differ build to build.
    await writeFile(
      config,
      JSON.stringify({ main: options.script, output: blob, disableExperimentalSEAWarning: true, useCodeCache: false, useSnapshot: false }),
    );
    await runTool(nodeBinary, ["--experimental-sea-config", config], { cwd: work });

    const executable = join(work, "flexnode-agent");
    await copyFile(nodeBinary, executable);
    await chmod(executable, 0o755);
    // Symbols are ~13 MB of node's 99 MB and unused at run time. strip is optional (binutils); without it the SEA is bigger.
    if (canStrip) await runTool("strip", ["--strip-all", executable]);
    // postject's CLI in a child process: its ELF rewriter (LIEF, as wasm) prints warnings straight to the console.
    await runTool(nodeBinary, [POSTJECT_CLI, executable, SEA_RESOURCE, blob, "--sentinel-fuse", SEA_FUSE]);

    const smoke = await smokeTest(executable);
    if (!smoke.ok) return { built: false, reason: `the built executable does not run \`version\`: ${smoke.output}` };
    await rename(executable, options.output);
    return { built: true, key, bytes: (await stat(options.output)).size, stripped: canStrip, reused: false, versionOutput: smoke.output };
  } catch (error) {
    if (error instanceof ToolError) return { built: false, reason: error.message };
    throw error;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

async function smokeTest(executable: string): Promise<{ ok: boolean; output: string }> {
  try {
    const result = await runTool(executable, ["version"], { allowFailure: true, env: { PATH: process.env.PATH ?? "/usr/bin:/bin" } });
    const output = result.stdout.trim();
    return {
      ok: result.code === 0 && output.startsWith("flexnode-agent "),
      output: result.code === 0 ? output : `exit ${result.code}: ${result.stderr.trim()}`,
    };
  } catch (error) {
    return { ok: false, output: (error as Error).message };
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
