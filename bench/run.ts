/**
 * `npm run bench [-- --quick] [-- name ...]`: runs the benchmarks, each printing one final JSON line.
 * `--quick` shrinks every benchmark so CI can keep the scripts working without spending time on figures.
 */
import { replayCost } from "./replay-cost.js";

const benches: Record<string, (o: { quick: boolean }) => Promise<Record<string, unknown>>> = {
  "replay-cost": replayCost,
};

const args = process.argv.slice(2);
const quick = args.includes("--quick");
const names = args.filter((a) => !a.startsWith("--"));
const unknown = names.filter((n) => !(n in benches));
if (unknown.length > 0) {
  console.error(`unknown benchmark(s): ${unknown.join(", ")}; known: ${Object.keys(benches).join(", ")}`);
  process.exit(2);
}
for (const name of names.length > 0 ? names : Object.keys(benches)) {
  const result = await benches[name]!({ quick });
  console.log(JSON.stringify({ ...result, quick }));
}
