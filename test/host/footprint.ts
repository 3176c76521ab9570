/**
 * The agent's footprint on the real-host tier's machine, for bench/agent-footprint.ts: a node enrolled and Ready
 * through the real plan, the agent running as the shipped unit from its sysext image (the single executable, read
 * through a loop device), measured from the host through /proc.
 *
 * - resident: the agent process's VmRSS (private and file-backed) and CPU ticks over a window after it settled.
 * - drain: mode "drain" and flexnode-agent.timer enabled; over a window of several timer periods, how often an agent
 *   process exists at all (sampled every 100 ms), its RSS while it does, and the CPU of every run. CPU is what the
 *   machine's PID 1 reaped from its children (the agent and what it ran), so runs that start and end between samples
 *   are counted whole; nothing else runs in the machine while it idles.
 * - the reset's command latency in drain mode: from the decommission request to the agent starting the reset step
 *   (requested right after a run ended, so the timer's whole period lies ahead: the worst case).
 */
import { readdir, readFile, readlink, writeFile } from "node:fs/promises";
import { AGENT_UNIT, type HostWorld } from "./host-world.js";
import { unitProps, waitUntil } from "./support.js";

export const TIMER_UNIT = "flexnode-agent.timer";
const AGENT_COMM = "flexnode-agent";

interface Stat {
  /** utime + stime of the process itself. */
  ticks: number;
  /** cutime + cstime: children it has reaped. */
  childTicks: number;
}

async function procStat(pid: number): Promise<Stat | undefined> {
  try {
    const text = await readFile(`/proc/${pid}/stat`, "utf8");
    const rest = text.slice(text.lastIndexOf(")") + 2).split(" ");
    return { ticks: Number(rest[11]) + Number(rest[12]), childTicks: Number(rest[13]) + Number(rest[14]) };
  } catch {
    return undefined;
  }
}

async function memory(pid: number): Promise<{ rssKb: number; anonKb: number; fileKb: number; hwmKb: number } | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, "utf8");
    const kb = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
    return { rssKb: kb("VmRSS"), anonKb: kb("RssAnon"), fileKb: kb("RssFile"), hwmKb: kb("VmHWM") };
  } catch {
    return undefined;
  }
}

/** Host PIDs of the agent processes inside the machine (its PID namespace, command name flexnode-agent). */
export async function agentPids(world: HostWorld): Promise<number[]> {
  const ns = await readlink(`/proc/${world.machine.leaderPid}/ns/pid`);
  const pids: number[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if ((await readFile(`/proc/${entry}/comm`, "utf8")).trim() !== AGENT_COMM) continue;
      if ((await readlink(`/proc/${entry}/ns/pid`)) === ns) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/** systemd's time spans as `systemctl show` prints them ("50s", "1min 10s"). */
function seconds(span: string): number {
  let total = 0;
  for (const [, n, unit] of span.matchAll(/(\d+(?:\.\d+)?)\s*(min|ms|s)\b/g)) total += Number(n) * (unit === "min" ? 60 : unit === "ms" ? 0.001 : 1);
  return total || NaN;
}

const mb = (kb: number): number => Math.round((kb / 1024) * 10) / 10;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface ResidentFigures {
  mode: "resident";
  settleSeconds: number;
  idleSeconds: number;
  rssMb: number;
  rssAnonMb: number;
  rssFileMb: number;
  rssMbMax: number;
  peakRssMb: number;
  cpuPercent: number;
  cpuTicks: number;
  cpuPercentResolution: number;
}

export async function measureResident(world: HostWorld, o: { settleSeconds: number; seconds: number; hz: number }): Promise<ResidentFigures> {
  const pids = await waitUntil("one resident agent process", 30_000, async () => {
    const p = await agentPids(world);
    return p.length === 1 ? p : undefined;
  });
  const pid = pids[0]!;
  await sleep(o.settleSeconds * 1000);
  const first = (await procStat(pid))!;
  const started = performance.now();
  const rss: number[] = [];
  for (let i = 0; i < o.seconds; i++) {
    await sleep(1000);
    const m = await memory(pid);
    if (!m) throw new Error("the resident agent exited during the window");
    rss.push(m.rssKb);
  }
  const last = (await procStat(pid))!;
  const m = (await memory(pid))!;
  const elapsed = (performance.now() - started) / 1000;
  return {
    mode: "resident",
    settleSeconds: o.settleSeconds,
    idleSeconds: Math.round(elapsed * 10) / 10,
    rssMb: mb(m.rssKb),
    rssAnonMb: mb(m.anonKb),
    rssFileMb: mb(m.fileKb),
    rssMbMax: mb(Math.max(...rss)),
    peakRssMb: mb(m.hwmKb),
    cpuPercent: Math.round(((last.ticks - first.ticks) / o.hz / elapsed) * 100 * 1000) / 1000,
    cpuTicks: last.ticks - first.ticks,
    cpuPercentResolution: Math.round((1 / o.hz / elapsed) * 100 * 1000) / 1000,
  };
}

/** Switches the node to drain mode as an operator would: agent.json, the timer enabled, the agent restarted. */
export async function enableDrain(world: HostWorld, o: { timerSeconds?: number }): Promise<void> {
  const { machine } = world;
  const config = JSON.parse(await readFile(machine.path("/etc/flexnode/agent.json"), "utf8")) as Record<string, unknown>;
  await writeFile(machine.path("/etc/flexnode/agent.json"), `${JSON.stringify({ ...config, mode: "drain" }, null, 2)}\n`, { mode: 0o600 });
  if (o.timerSeconds !== undefined) {
    await machine.sh(
      `mkdir -p /run/systemd/system/${TIMER_UNIT}.d && printf '[Timer]\\nOnUnitInactiveSec=\\nOnUnitInactiveSec=${o.timerSeconds}s\\n' > /run/systemd/system/${TIMER_UNIT}.d/50-interval.conf && systemctl daemon-reload`,
    );
  }
  await machine.exec(["systemctl", "enable", "--now", TIMER_UNIT]);
  await machine.exec(["systemctl", "restart", AGENT_UNIT]);
}

export interface DrainFigures {
  mode: "drain";
  timerSeconds: number;
  windowSeconds: number;
  /** Agent runs that started inside the window. */
  runs: number;
  /** Share of the window with an agent process alive. */
  residentShare: number;
  /** RSS averaged over the whole window (zero while no agent exists). */
  rssMbAverage: number;
  /** The largest RSS a run reached (the resident figure's counterpart while a drain runs). */
  rssMbWhileRunning: number;
  /** RSS between runs: no process. */
  rssMbBetweenRuns: 0;
  cpuPercent: number;
  cpuTicks: number;
  cpuSecondsPerRun: number;
  /** Seconds each run lived (start to exit, sampled every 100 ms). */
  runSeconds: number[];
  /** From `systemctl start` to "listening on mailbox", per run (journal timestamps). */
  secondsToConnected: number[];
}

export async function measureDrain(world: HostWorld, o: { seconds: number; hz: number }): Promise<DrainFigures> {
  const { machine } = world;
  const timer = await unitProps(machine, TIMER_UNIT, ["TimersMonotonic"]);
  const timerSeconds = seconds(/OnUnitInactiveUSec=([^;]+);/.exec(timer["TimersMonotonic"] ?? "")?.[1] ?? "");
  // Start with no agent running: the restart after switching modes drains and exits first.
  await waitUntil("the agent drains and exits after the switch to drain mode", 120_000, async () => ((await agentPids(world)).length === 0 ? true : undefined));
  const leader = world.machine.leaderPid;
  const since = (await machine.exec(["date", "+%s.%N"])).stdout.trim();
  const first = (await procStat(leader))!;
  const started = performance.now();
  const runs = new Map<number, { firstSeen: number; lastSeen: number; rssKb: number }>();
  let aliveSamples = 0;
  let samples = 0;
  let rssSumKb = 0;
  while (performance.now() - started < o.seconds * 1000) {
    const pids = await agentPids(world);
    samples += 1;
    if (pids.length > 0) aliveSamples += 1;
    for (const pid of pids) {
      const m = await memory(pid);
      if (!m) continue;
      rssSumKb += m.rssKb;
      const run = runs.get(pid) ?? { firstSeen: performance.now(), lastSeen: 0, rssKb: 0 };
      run.lastSeen = performance.now();
      run.rssKb = Math.max(run.rssKb, m.rssKb);
      runs.set(pid, run);
    }
    await sleep(100);
  }
  // Let a run still going at the end finish, so PID 1 has reaped what the window started.
  await waitUntil("the last run ends", 60_000, async () => ((await agentPids(world)).length === 0 ? true : undefined));
  const last = (await procStat(leader))!;
  const elapsed = (performance.now() - started) / 1000;
  const journal = (await machine.exec(["journalctl", "--no-pager", "-o", "short-unix", "--since", `@${since}`, "-u", AGENT_UNIT])).stdout.split("\n");
  const connected: number[] = [];
  let startedAt: number | undefined;
  for (const line of journal) {
    const at = Number(line.split(" ")[0]);
    if (line.includes("systemd[1]: Starting flexnode-agent.service")) startedAt = at;
    if (line.includes("listening on mailbox") && startedAt !== undefined) {
      connected.push(Math.round((at - startedAt) * 100) / 100);
      startedAt = undefined;
    }
  }
  const ticks = last.childTicks - first.childTicks;
  const completed = [...runs.values()];
  return {
    mode: "drain",
    timerSeconds,
    windowSeconds: Math.round(elapsed * 10) / 10,
    runs: completed.length,
    residentShare: Math.round((aliveSamples / samples) * 1000) / 1000,
    rssMbAverage: mb(rssSumKb / samples),
    rssMbWhileRunning: mb(Math.max(0, ...completed.map((r) => r.rssKb))),
    rssMbBetweenRuns: 0,
    cpuPercent: Math.round((ticks / o.hz / elapsed) * 100 * 1000) / 1000,
    cpuTicks: ticks,
    cpuSecondsPerRun: completed.length > 0 ? Math.round((ticks / o.hz / completed.length) * 100) / 100 : 0,
    runSeconds: completed.map((r) => Math.round((r.lastSeen - r.firstSeen) / 100) / 10),
    secondsToConnected: connected,
  };
}

/** Decommissions the node and measures, in the machine's journal, how long until the agent started the reset step. */
export async function resetLatency(world: HostWorld, nodeId: string): Promise<{ resetLatencySeconds: number; offboard: string }> {
  const { machine, stack } = world;
  const requested = Number((await machine.exec(["date", "+%s.%N"])).stdout.trim());
  const since = new Date().toISOString();
  const res = await stack.admin("POST", `/api/manage/nodes/${nodeId}/decommission`);
  if (res.status !== 202) throw new Error(`decommission answered ${res.status}: ${res.text}`);
  const offboard = await waitUntil("the offboarding finishes", 240_000, async () => {
    const s = stack.harness.simulator.getStatus(`${nodeId}:offboard`);
    return s && s.createdTime >= since && ["Completed", "Failed", "Terminated"].includes(s.runtimeStatus) ? s : undefined;
  });
  // journald stores what the agent printed a moment after the agent printed it: read until the line is there.
  const reset = await waitUntil("the agent's reset step in the machine's journal", 30_000, async () => {
    const journal = (await machine.exec(["journalctl", "--no-pager", "-o", "short-unix", "--since", `@${requested}`, "-u", AGENT_UNIT])).stdout.split("\n");
    return journal.find((l) => l.includes("▶ reset (reset"));
  });
  return { resetLatencySeconds: Math.round((Number(reset.split(" ")[0]) - requested) * 10) / 10, offboard: offboard.runtimeStatus };
}
