/**
 * `npm run build:agent`: everything a node needs, under dist/agent/.
 *   flexnode-agent.mjs        one-file ESM bundle (node >= 20), + .meta.json (esbuild metafile)
 *   flexnode-agent            Node single executable (when this machine's node supports it)
 *   flexnode-agent.raw        systemd-sysext image (+ .sha512)
 *   flatcar/flexnode.{bu,ign} the Flatcar example rendered for this image
 *   build-info.json           sizes, hashes, what was reused and why the SEA is missing if it is
 * It also regenerates node-agent/packaging/flatcar/flexnode.ign from flexnode.bu. The SEA and the image are rebuilt
 * only when their inputs changed (keys in build-info.json), so a rebuild without agent changes takes about a second.
 */
import { copyFile, mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { performance } from "node:perf_hooks";
import * as z from "zod";
import { BundleContentError, bundleAgent, inspectInputs } from "./bundle.js";
import { transpile } from "./flatcar/butane.js";
import { imageFileName, renderRelease } from "./flatcar/release.js";
import { outputs, sources } from "./layout.js";
import { runTool } from "./run-tool.js";
import { buildSea, type SeaOutcome } from "./sea.js";
import { buildSysext, systemdArchitecture, type SysextPayload } from "./sysext.js";
import { writeIfChanged } from "./write-file.js";

const PreviousInfoSchema = z.looseObject({
  sea: z.looseObject({ key: z.string().optional() }).optional(),
  sysext: z.looseObject({ key: z.string().optional() }).optional(),
});

export interface BuildInfo {
  version: string;
  node: string;
  arch: string;
  bundle: { bytes: number; packages: Record<string, number>; sources: number };
  sea: (Extract<SeaOutcome, { built: true }> & { scriptBytes: number }) | { built: false; reason: string };
  sysext: {
    payload: SysextPayload["kind"];
    bytes: number;
    sha512: string;
    key: string;
    reused: boolean;
    entries: { path: string; mode: string; target?: string }[];
  };
  /** changed: the committed flexnode.ign differed from flexnode.bu's transpilation (rewritten unless updateSources is false). */
  flatcar: { ignition: string; changed: boolean };
  ms: Record<string, number>;
}

async function previousKeys(): Promise<{ sea?: string; sysext?: string }> {
  try {
    const parsed = PreviousInfoSchema.safeParse(JSON.parse(await readFile(outputs.buildInfo, "utf8")));
    return parsed.success
      ? { ...(parsed.data.sea?.key ? { sea: parsed.data.sea.key } : {}), ...(parsed.data.sysext?.key ? { sysext: parsed.data.sysext.key } : {}) }
      : {};
  } catch {
    return {};
  }
}

/** Runs the bundle from an empty directory: proves it needs no node_modules and yields the version it reports. */
async function bundleVersion(bundle: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "flexnode-bundle-"));
  try {
    const copy = join(dir, "flexnode-agent.mjs");
    await copyFile(bundle, copy);
    const { stdout } = await runTool(process.execPath, [copy, "version"], { cwd: dir, env: { PATH: process.env.PATH ?? "/usr/bin:/bin" } });
    const match = /^flexnode-agent (\S+)/.exec(stdout.trim());
    if (!match) throw new Error(`the bundle's \`version\` printed ${JSON.stringify(stdout.trim())}`);
    return match[1]!;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export interface BuildOptions {
  log?: (line: string) => void;
  /**
   * Rewrite the committed flatcar/flexnode.ign when flexnode.bu changed (default true, what `npm run build:agent`
   * does). The packaging test passes false, so a stale committed file is reported instead of silently fixed.
   */
  updateSources?: boolean;
}

export async function buildAgent(options: BuildOptions = {}): Promise<BuildInfo> {
  const log = options.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const ms: Record<string, number> = {};
  const timed = async <T>(name: string, work: () => Promise<T>): Promise<T> => {
    const started = performance.now();
    try {
      return await work();
    } finally {
      ms[name] = Math.round(performance.now() - started);
    }
  };
  await mkdir(outputs.flatcarDir, { recursive: true });
  const previous = await previousKeys();

  const bundle = await timed("bundle", () =>
    bundleAgent({ source: { entry: sources.entry }, format: "esm", outfile: outputs.bundle, metafile: outputs.bundleMeta }),
  );
  const inputs = inspectInputs(bundle.metafile);
  if (inputs.violations.length > 0) throw new BundleContentError(inputs.violations);
  const version = await timed("bundleSmoke", () => bundleVersion(outputs.bundle));
  log(`bundle  ${outputs.bundle}  ${kb(bundle.bytes)}  (${Object.keys(inputs.packages).length} packages, ${inputs.sources.length} source files)`);

  let sea: BuildInfo["sea"];
  try {
    const script = await timed("seaBundle", () =>
      bundleAgent({ source: { entry: sources.seaEntry }, format: "cjs", outfile: outputs.seaScript, metafile: outputs.seaMeta }),
    );
    const seaInputs = inspectInputs(script.metafile);
    if (seaInputs.violations.length > 0) throw new BundleContentError(seaInputs.violations);
    const outcome = await timed("sea", () =>
      buildSea({ script: outputs.seaScript, output: outputs.sea, ...(previous.sea ? { previousKey: previous.sea } : {}) }),
    );
    sea = outcome.built ? { ...outcome, scriptBytes: script.bytes } : outcome;
  } catch (error) {
    if (error instanceof BundleContentError) throw error;
    // esbuild refuses e.g. top-level await in CommonJS: no SEA, the bundle stays the product.
    sea = { built: false, reason: `CommonJS bundle for the SEA failed: ${(error as Error).message.split("\n").slice(0, 3).join(" ")}` };
  }
  if (sea.built)
    log(`sea     ${outputs.sea}  ${mb(sea.bytes)}${sea.reused ? "  (unchanged, reused)" : ""}${sea.stripped ? "" : "  (not stripped: no strip on PATH)"}`);
  else {
    await rm(outputs.sea, { force: true });
    log(`sea     not built: ${sea.reason}`);
  }

  const arch = systemdArchitecture();
  const payload: SysextPayload = sea.built
    ? { kind: "sea", executable: outputs.sea }
    : { kind: "node-and-bundle", node: process.execPath, bundle: outputs.bundle };
  const image = await timed("sysext", () =>
    buildSysext({ payload, version, arch, output: outputs.sysext, ...(previous.sysext ? { previousKey: previous.sysext } : {}) }),
  );
  await writeIfChanged(outputs.sysextSha512, `${image.sha512}  flexnode-agent.raw\n`);
  log(`sysext  ${outputs.sysext}  ${mb(image.bytes)}  payload ${payload.kind}${image.reused ? "  (unchanged, reused)" : ""}`);

  const flatcar = await timed("flatcar", async () => {
    const butane = await readFile(sources.butane, "utf8");
    const ignition = transpile(butane);
    const committed = await readFile(sources.ignition, "utf8").catch(() => "");
    const changed = committed !== ignition;
    if (changed && options.updateSources !== false) await writeIfChanged(sources.ignition, ignition);
    const rendered = renderRelease(butane, { imageFile: imageFileName(version, arch), sha512: image.sha512 });
    await writeIfChanged(join(outputs.flatcarDir, "flexnode.bu"), rendered);
    await writeIfChanged(join(outputs.flatcarDir, "flexnode.ign"), transpile(rendered));
    return { ignition: sources.ignition, changed };
  });
  const state = !flatcar.changed ? "up to date" : options.updateSources === false ? "OUT OF DATE: run npm run build:agent" : "regenerated: commit it";
  log(`flatcar ${flatcar.ignition}  (${state}); ${join(outputs.flatcarDir, "flexnode.ign")}`);

  const info: BuildInfo = {
    version,
    node: process.version,
    arch,
    bundle: { bytes: bundle.bytes, packages: inputs.packages, sources: inputs.sources.length },
    sea,
    sysext: { payload: payload.kind, bytes: image.bytes, sha512: image.sha512, key: image.key, reused: image.reused, entries: image.entries },
    flatcar,
    ms,
  };
  await writeIfChanged(outputs.buildInfo, `${JSON.stringify(info, null, 2)}\n`);
  log(
    `times   ${Object.entries(ms)
      .map(([k, v]) => `${k} ${v} ms`)
      .join(", ")}`,
  );
  return info;
}

const kb = (n: number): string => `${(n / 1024).toFixed(1)} KiB`;
const mb = (n: number): string => `${(n / 1024 / 1024).toFixed(1)} MiB`;

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  buildAgent().catch((error: unknown) => {
    console.error(`build:agent failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  });
}
