/**
 * Where the packaging pipeline reads and writes, and where the agent lands on a node. The build, its tests and the
 * footprint benchmark all take paths from here so they cannot drift apart.
 */
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const packagingDir = join(repoRoot, "node-agent/packaging");
export const distDir = join(repoRoot, "dist/agent");

export const outputs = {
  /** The product: one self-contained ESM file, run by any Node >= 20. */
  bundle: join(distDir, "flexnode-agent.mjs"),
  bundleMeta: join(distDir, "flexnode-agent.meta.json"),
  /** CommonJS variant, only as the single-executable's embedded script. */
  seaScript: join(distDir, "flexnode-agent.sea.cjs"),
  seaMeta: join(distDir, "flexnode-agent.sea.meta.json"),
  sea: join(distDir, "flexnode-agent"),
  sysext: join(distDir, "flexnode-agent.raw"),
  sysextSha512: join(distDir, "flexnode-agent.raw.sha512"),
  flatcarDir: join(distDir, "flatcar"),
  buildInfo: join(distDir, "build-info.json"),
} as const;

export const sources = {
  entry: join(repoRoot, "node-agent/src/main.ts"),
  // The same entry: src/main.ts has no top-level await, so it bundles as CommonJS for the single executable too.
  seaEntry: join(repoRoot, "node-agent/src/main.ts"),
  unit: join(packagingDir, "systemd/flexnode-agent.service"),
  /** Drain mode's timer: starts the agent again to drain its queue. */
  timer: join(packagingDir, "systemd/flexnode-agent.timer"),
  /** For hosts with systemd < 255 that do not reload units after the boot-time merge (installed in /etc). */
  sysextReloadUnit: join(packagingDir, "systemd/flexnode-sysext-reload.service"),
  sysextDropIn: join(packagingDir, "sysext/10-sysext.conf"),
  butane: join(packagingDir, "flatcar/flexnode.bu"),
  ignition: join(packagingDir, "flatcar/flexnode.ign"),
} as const;

/** Paths on the node. The agent itself never writes /usr: only the sysext image (a read-only overlay) puts files there. */
export const onNode = {
  mutableBinary: "/opt/flexnode/bin/flexnode-agent",
  sysextDir: "/usr/lib/flexnode",
  sysextBinary: "/usr/lib/flexnode/flexnode-agent",
  unitName: "flexnode-agent.service",
  timerName: "flexnode-agent.timer",
  extensionName: "flexnode-agent",
} as const;
