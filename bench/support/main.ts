/**
 * Every benchmark is its own script (`tsx bench/<name>.ts [--quick]`), so each runs in a fresh process: benchmarks
 * register functions, start emulators and measure memory, and must not see each other's leftovers.
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export type Bench = (options: { quick: boolean; args: readonly string[] }) => Promise<Record<string, unknown>>;

export interface RunBenchOptions {
  /**
   * The process runs the service's code as the deployed Node worker does: it must start with the worker's flags
   * (infra/node-worker-arguments.txt, the app setting languageWorkers__node__arguments). Started without them, the
   * script runs itself again with them.
   */
  worker?: boolean;
}

const WORKER_ARGUMENTS = fileURLToPath(new URL("../../infra/node-worker-arguments.txt", import.meta.url));
const PARENT_ENV = "FLEXNODE_BENCH_PARENT_PID";

/** The flags the Functions host starts the service's Node worker with. */
function workerArguments(): string[] {
  return readFileSync(WORKER_ARGUMENTS, "utf8").trim().split(/\s+/).filter(Boolean);
}

/** Runs `bench` when its file is the process entry point and prints its one final JSON line. */
export function runBench(name: string, bench: Bench, options: RunBenchOptions = {}): void {
  if (options.worker) {
    const missing = workerArguments().filter((flag) => !process.execArgv.includes(flag));
    if (missing.length > 0) return rerunWith(missing);
  }
  watchParent();
  const args = process.argv.slice(2);
  const quick = args.includes("--quick");
  bench({ quick, args })
    .then((result) => {
      console.log(
        JSON.stringify({
          bench: name,
          ...result,
          quick,
          node: process.version,
          workerFlags: workerArguments().filter((flag) => process.execArgv.includes(flag)),
        }),
      );
      // Emulators and SDK clients may hold sockets; a benchmark ends when it has printed its figures.
      process.exit(0);
    })
    .catch((error: unknown) => {
      console.error(`bench ${name} failed:`, error);
      process.exit(1);
    });
}

/** Runs this script again in a child with `flags` added, passing its output and exit status through. */
function rerunWith(flags: string[]): void {
  const child = spawn(process.execPath, [...process.execArgv, ...flags, process.argv[1]!, ...process.argv.slice(2)], {
    stdio: "inherit",
    env: { ...process.env, [PARENT_ENV]: String(process.pid) },
  });
  for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => child.kill(signal));
  child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
}

/**
 * A re-run child ends when its parent is gone: bench/run.ts stops a hung quick benchmark with SIGKILL, which the
 * parent cannot pass on.
 */
function watchParent(): void {
  const parent = Number(process.env[PARENT_ENV]);
  if (!parent) return;
  setInterval(() => {
    if (process.ppid !== parent) process.exit(1);
  }, 1_000).unref();
}
