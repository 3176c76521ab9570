/**
 * `npm run bench [-- --quick] [-- name ...]`: runs the benchmarks (every `bench/<name>.ts`), each in its own process,
 * each printing one final JSON line. `--quick` shrinks every benchmark so CI keeps the scripts working without
 * spending time on figures. Names come first; the flags after them go to each benchmark (e.g. `-- fleet --nodes 2000`).
 * At the end it prints the goals the benchmarks measured (`goals` in their JSON: figure, target, met) in one table,
 * with the load average each was measured under, and last what failed, with the end of its stderr.
 */
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Goal } from "./support/goals.js";

const here = dirname(fileURLToPath(import.meta.url));
const known = readdirSync(here)
  .filter((f) => f.endsWith(".ts") && f !== "run.ts")
  .map((f) => f.slice(0, -3))
  .sort();

const args = process.argv.slice(2);
// Names come first, flags after: `-- fleet saga-overhead --quick`.
const firstFlag = args.findIndex((a) => a.startsWith("--"));
const names = firstFlag === -1 ? args : args.slice(0, firstFlag);
const flags = firstFlag === -1 ? [] : args.slice(firstFlag);
const unknown = names.filter((n) => !known.includes(n));
if (unknown.length > 0) {
  console.error(`unknown benchmark(s): ${unknown.join(", ")}; known: ${known.join(", ")}`);
  process.exit(2);
}
const quick = flags.includes("--quick");
const QUICK_TIMEOUT_MS = 10 * 60_000;
/** What failed, for the end of the output: a log cut to its end still says what and why. */
const failed: string[] = [];
const flaked: string[] = [];
const goals: string[] = [];
for (const name of names.length > 0 ? names : known) {
  let r = run(name);
  // CI runs the scripts (--quick) only to keep them working, on machines busier than a measurement wants: a failure
  // there is reported and the script run once more. A broken script fails twice.
  if (r.status !== 0 && quick) {
    flaked.push(`bench ${name} failed (${r.status ?? r.signal}), then passed when run again; the first run's stderr ended:\n${tail(r.stderr)}`);
    console.error(`bench ${name} exited with ${r.status ?? r.signal}; running it once more`);
    r = run(name);
  }
  process.stdout.write(r.stdout);
  if (r.status !== 0) {
    if (quick) flaked.pop();
    failed.push(`bench ${name} exited with ${r.status ?? r.signal}; its stderr ended:\n${tail(r.stderr)}`);
    continue;
  }
  goals.push(...goalLines(name, lastJsonLine(r.stdout)));
}
if (goals.length > 0) {
  console.log("\n| benchmark | goal | figure | target | met | load average (1 min, start–end) |\n|---|---|---|---|---|---|");
  for (const line of goals) console.log(line);
}
for (const line of [...flaked, ...failed]) console.error(`\n${line}`);
process.exit(failed.length > 0 ? 1 : 0);

/** Runs one benchmark in its own process; its stderr is echoed when it ends and kept for the summary. */
function run(name: string): { status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ["--import", "tsx", join(here, `${name}.ts`), ...flags], {
    stdio: ["inherit", "pipe", "pipe"],
    encoding: "utf8",
    maxBuffer: 256 * 1024 * 1024,
    // A quick run takes seconds to a minute; one that hangs (a fleet process was once seen stuck at start-up, its main
    // thread waiting on the module loader's thread) is stopped, and counts as a failure.
    ...(quick ? { timeout: QUICK_TIMEOUT_MS, killSignal: "SIGKILL" as const } : {}),
  });
  process.stderr.write(r.stderr ?? "");
  return { status: r.status, signal: r.signal, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

function tail(text: string, lines = 30): string {
  return text.trimEnd().split("\n").slice(-lines).join("\n") || "(nothing on stderr)";
}

function lastJsonLine(stdout: string): Record<string, unknown> | undefined {
  const line = stdout.trim().split("\n").at(-1);
  try {
    return line ? (JSON.parse(line) as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function goalLines(name: string, result: Record<string, unknown> | undefined): string[] {
  const list = (result?.goals as Goal[] | undefined) ?? [];
  const machine = result?.machine as { loadAvg1mAtStart?: number; loadAvg1mAtEnd?: number } | undefined;
  const load = machine ? `${machine.loadAvg1mAtStart}–${machine.loadAvg1mAtEnd}` : "";
  return list.map((g) => `| ${name} | ${g.goal} | ${g.figure} | ${g.target} | ${g.met ? "yes" : "**no**"} | ${load} |`);
}
