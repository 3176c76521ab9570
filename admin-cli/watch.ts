/**
 * `flexnode watch <nodeId>`: prints the node's progress whenever it changes, until the node is Ready (0), Failed (10)
 * or Offboarded (0), or --timeout passes (11). `flexnode watch`: the fleet's counts whenever they change, until
 * --timeout. Polls; every loop is bounded by the timeout.
 */
import { EXIT, exitFor } from "./exit-codes.js";
import type { Api, Io } from "./main.js";
import { progressLine } from "./render.js";
import { UsageError } from "./request.js";

const TERMINAL: Record<string, number> = { Ready: EXIT.ok, Failed: EXIT.nodeFailed, Offboarded: EXIT.ok };

export async function watch(api: Api, options: { nodeId?: string; flags: Map<string, string | true>; output: string; io: Io }): Promise<number> {
  const { io, output } = options;
  const seconds = (name: string, fallback: number) => {
    const v = options.flags.get(name);
    const n = v === undefined ? fallback : Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new UsageError(`--${name} must be a positive number of seconds`);
    return n;
  };
  const intervalMs = seconds("interval", 2) * 1000;
  const deadline = Date.now() + seconds("timeout", 600) * 1000;
  const sleep = io.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  let last = "";
  while (Date.now() < deadline) {
    const res = await api.call("GET", options.nodeId ? `/api/manage/nodes/${options.nodeId}` : "/api/manage/fleet");
    if (res.status >= 400) {
      io.err(`flexnode: ${res.status} ${(res.json as { title?: string } | undefined)?.title ?? "request failed"}`);
      return exitFor(res.status);
    }
    const b = res.json as Record<string, unknown>;
    const line = options.nodeId ? `${String(b.status)}  ${progressLine(b.progress as Record<string, unknown> | undefined)}` : fleetLine(b);
    if (line !== last) {
      last = line;
      io.out(output === "json" ? JSON.stringify(b) : `${new Date().toISOString().slice(11, 19)}  ${line}`);
    }
    const status = String(b.status);
    // A node just decommissioned or retried still shows its old status until its saga's first activity runs.
    const running = ["Pending", "Running"].includes(String((b.progress as { runtimeStatus?: string } | undefined)?.runtimeStatus));
    if (options.nodeId && status in TERMINAL && !running) return TERMINAL[status]!;
    await sleep(intervalMs);
  }
  io.err("flexnode: watch timed out");
  return EXIT.timedOut;
}

function fleetLine(b: Record<string, unknown>): string {
  const totals = (b.totals as { nodes: number; byStatus: Record<string, number> } | undefined) ?? { nodes: 0, byStatus: {} };
  const counts = Object.entries(totals.byStatus)
    .filter(([, n]) => n > 0)
    .map(([s, n]) => `${s} ${n}`)
    .join(", ");
  return `${totals.nodes} node(s)${counts ? `: ${counts}` : ""}`;
}
