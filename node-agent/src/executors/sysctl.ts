/**
 * sysctl: a drop-in in /etc/sysctl.d (so the values survive a reboot) applied now with `sysctl -p <file>`. The
 * values it changes are recorded first, read from /proc/sys under the root, so reset can write them back.
 */
import { readFile } from "node:fs/promises";
import * as path from "node:path";
import type { SysctlParams } from "../../../contract/step-params.js";
import { sha256Hex } from "../fs-atomic.js";
import { fsPathOf, resolveHostPath } from "../paths.js";
import { HostCommandFailedError } from "../step-errors.js";
import type { Executor } from "./context.js";
import { assertNotDirectory, fileMatches, placeFile } from "./host-changes.js";

const DROP_IN_MODE = 0o644;

export function procSysPath(root: string, name: string): string {
  return path.join(fsPathOf(root, "/proc/sys"), ...name.split("."));
}

/** Values as the kernel prints them use tabs between fields; compare field by field. */
export function normaliseSysctlValue(value: string): string {
  return value.trim().split(/\s+/).join(" ");
}

export async function readSysctl(root: string, name: string): Promise<string | null> {
  try {
    return normaliseSysctlValue(await readFile(procSysPath(root, name), "utf8"));
  } catch {
    return null;
  }
}

export function dropInContent(settings: Record<string, string>): string {
  const lines = Object.entries(settings).map(([k, v]) => `${k} = ${v}`);
  return ["# Written by flexnode-agent; `flexnode-agent reset` restores the previous file and values.", ...lines, ""].join("\n");
}

export const sysctl: Executor<SysctlParams> = async (params, ctx) => {
  const { root, host } = ctx.deps;
  const target = await resolveHostPath(root, params.dropIn, { write: true });
  await assertNotDirectory(target.fsPath, target.hostPath);
  const content = dropInContent(params.settings);
  const differing: { name: string; prior: string | null }[] = [];
  for (const [name, value] of Object.entries(params.settings)) {
    const current = await readSysctl(root, name);
    if (current !== normaliseSysctlValue(value)) differing.push({ name, prior: current });
  }
  if (differing.length === 0 && (await fileMatches(target.fsPath, { sha256: sha256Hex(content), mode: DROP_IN_MODE }))) {
    return { changed: [] };
  }
  await ctx.manifest.record(ctx.stepId, ...differing.map(({ name, prior }) => ({ type: "sysctl" as const, name, prior })));
  await placeFile(ctx, params.dropIn, { content }, { sha256: sha256Hex(content), mode: DROP_IN_MODE });
  const result = await host.run("sysctl", ["-p", target.hostPath]);
  if (result.code !== 0)
    throw new HostCommandFailedError(`sysctl -p ${target.hostPath} exited ${result.code}: ${result.stderr.trim() || result.stdout.trim()}`);
  return { changed: differing.map((d) => d.name) };
};
