/**
 * Every benchmark is its own script (`tsx bench/<name>.ts [--quick]`), so each runs in a fresh process: benchmarks
 * register functions, start emulators and measure memory, and must not see each other's leftovers.
 */
export type Bench = (options: { quick: boolean; args: readonly string[] }) => Promise<Record<string, unknown>>;

/** Runs `bench` when its file is the process entry point and prints its one final JSON line. */
export function runBench(name: string, bench: Bench): void {
  const args = process.argv.slice(2);
  const quick = args.includes("--quick");
  bench({ quick, args })
    .then((result) => {
      console.log(JSON.stringify({ bench: name, ...result, quick, node: process.version }));
      // Emulators and SDK clients may hold sockets; a benchmark ends when it has printed its figures.
      process.exit(0);
    })
    .catch((error: unknown) => {
      console.error(`bench ${name} failed:`, error);
      process.exit(1);
    });
}
