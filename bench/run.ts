/**
 * `npm run bench [-- --quick] [-- name ...]`: runs the benchmarks (every `bench/<name>.ts`), each in its own process,
 * each printing one final JSON line. `--quick` shrinks every benchmark so CI keeps the scripts working without
 * spending time on figures. Names come first; the flags after them go to each benchmark (e.g. `-- fleet --nodes 2000`).
 */
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

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
let failed = 0;
for (const name of names.length > 0 ? names : known) {
  const r = spawnSync(process.execPath, ["--import", "tsx", join(here, `${name}.ts`), ...flags], { stdio: "inherit" });
  if (r.status !== 0) {
    console.error(`bench ${name} exited with ${r.status ?? r.signal}`);
    failed++;
  }
}
process.exit(failed > 0 ? 1 : 0);
