/**
 * systemdUnits: daemon-reload, then per unit enable/disable and start/stop through `systemctl`. What systemctl
 * reports before each change is recorded first, and only changes the agent made are recorded, so reset stops and
 * disables what the agent started and enabled and leaves a unit the host already ran alone. Before starting a unit,
 * the state, cache and log directories it declares that do not exist yet are recorded as created by the step
 * (unit-directories.ts), ahead of the start, so reset stops the unit first and then removes what it filled.
 */
import type { SystemdUnitsParams } from "../../../contract/step-params.js";
import type { HostCommands } from "../ports.js";
import { HostCommandFailedError, PreconditionFailedError } from "../step-errors.js";
import type { Executor } from "./context.js";
import { ownedDeclaredDirectories } from "./unit-directories.js";

/** `systemctl is-enabled` states in which `enable` has nothing to do. */
const ENABLED_STATES = new Set(["enabled", "enabled-runtime", "static", "alias", "indirect", "generated", "transient"]);

export interface UnitFileState {
  state: string;
  found: boolean;
}

export async function unitFileState(host: HostCommands, unit: string): Promise<UnitFileState> {
  const r = await host.run("systemctl", ["is-enabled", unit]);
  const state = r.stdout.trim().split("\n")[0]?.trim() ?? "";
  const missing = state === "not-found" || (r.code !== 0 && state === "" && /no such file|not found|does not exist/i.test(r.stderr));
  // Exit 0 means enabled in some form even when nothing is printed.
  return { state: state || (r.code === 0 ? "enabled" : "unknown"), found: !missing };
}

export async function unitActive(host: HostCommands, unit: string): Promise<{ active: boolean; state: string }> {
  const r = await host.run("systemctl", ["is-active", unit]);
  return { active: r.code === 0, state: r.stdout.trim() || (r.code === 0 ? "active" : "inactive") };
}

export async function systemctl(host: HostCommands, args: string[]): Promise<void> {
  const r = await host.run("systemctl", args);
  if (r.code !== 0) throw new HostCommandFailedError(`systemctl ${args.join(" ")} exited ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
}

export const systemdUnits: Executor<SystemdUnitsParams> = async (params, ctx) => {
  const { host } = ctx.deps;
  if (params.daemonReload) await systemctl(host, ["daemon-reload"]);
  // Preconditions for every unit before the first change.
  const states = new Map<string, UnitFileState>();
  for (const u of params.units) {
    const state = await unitFileState(host, u.name);
    if (!state.found) throw new PreconditionFailedError("unit_not_found", `unit ${u.name} is not installed (systemctl is-enabled: ${state.state})`);
    if (state.state === "masked" && (u.enable || u.start))
      throw new PreconditionFailedError("unit_masked", `unit ${u.name} is masked; the agent does not unmask units`);
    states.set(u.name, state);
  }
  const changed: string[] = [];
  for (const u of params.units) {
    const { state } = states.get(u.name)!;
    const enabled = ENABLED_STATES.has(state);
    if (u.enable === true && !enabled) {
      await ctx.manifest.record(ctx.stepId, { type: "unit", unit: u.name, action: "enabled", prior: state });
      await systemctl(host, ["enable", u.name]);
      changed.push(`enabled ${u.name}`);
    } else if (u.enable === false && state === "enabled") {
      await ctx.manifest.record(ctx.stepId, { type: "unit", unit: u.name, action: "disabled", prior: state });
      await systemctl(host, ["disable", u.name]);
      changed.push(`disabled ${u.name}`);
    }
    if (u.start === undefined) continue;
    const { active, state: activity } = await unitActive(host, u.name);
    if (u.start && !active) {
      const createdByAgent = (p: string): boolean => ctx.manifest.changes.some((c) => c.type === "directory" && c.path === p);
      const owned = await ownedDeclaredDirectories(ctx.deps.root, u.name, createdByAgent);
      if (owned.length > 0) await ctx.manifest.record(ctx.stepId, ...owned.map((path) => ({ type: "unit-directory" as const, unit: u.name, path })));
      await ctx.manifest.record(ctx.stepId, { type: "unit", unit: u.name, action: "started", prior: activity });
      await systemctl(host, ["start", u.name]);
      changed.push(`started ${u.name}`);
    } else if (!u.start && active) {
      await ctx.manifest.record(ctx.stepId, { type: "unit", unit: u.name, action: "stopped", prior: activity });
      await systemctl(host, ["stop", u.name]);
      changed.push(`stopped ${u.name}`);
    }
  }
  return { changed };
};
