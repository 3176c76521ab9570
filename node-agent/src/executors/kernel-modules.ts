/**
 * kernelModules: load now with modprobe and persist in /etc/modules-load.d. Only modules that were neither loaded nor
 * built in (no /sys/module/<name>) are recorded, so reset unloads exactly what the agent loaded.
 */
import type { KernelModulesParams } from "../../../contract/step-params.js";
import { lstatIfExists, sha256Hex } from "../fs-atomic.js";
import { fsPathOf } from "../paths.js";
import { HostCommandFailedError } from "../step-errors.js";
import type { Executor } from "./context.js";
import { fileMatches, placeFile } from "./host-changes.js";
import { resolveHostPath } from "../paths.js";

/** sysfs spells module names with underscores whatever modprobe was given. */
export function moduleLoaded(root: string, name: string): Promise<boolean> {
  return lstatIfExists(fsPathOf(root, `/sys/module/${name.replaceAll("-", "_")}`)).then((s) => s !== undefined);
}

export function persistContent(modules: readonly string[]): string {
  return ["# Written by flexnode-agent; `flexnode-agent reset` restores the previous file.", ...modules, ""].join("\n");
}

export const kernelModules: Executor<KernelModulesParams> = async (params, ctx) => {
  const { root, host } = ctx.deps;
  const content = persistContent(params.modules);
  const target = await resolveHostPath(root, params.persistFile, { write: true });
  const toLoad: string[] = [];
  for (const m of params.modules) if (!(await moduleLoaded(root, m))) toLoad.push(m);
  if (toLoad.length === 0 && (await fileMatches(target.fsPath, { sha256: sha256Hex(content), mode: 0o644 }))) return { loaded: [] };
  await ctx.manifest.record(ctx.stepId, ...toLoad.map((name) => ({ type: "module" as const, name })));
  await placeFile(ctx, params.persistFile, { content }, { sha256: sha256Hex(content), mode: 0o644 });
  for (const m of toLoad) {
    const result = await host.run("modprobe", [m]);
    if (result.code !== 0) throw new HostCommandFailedError(`modprobe ${m} exited ${result.code}: ${result.stderr.trim()}`);
  }
  return { loaded: toLoad };
};
