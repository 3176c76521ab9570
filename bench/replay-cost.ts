/**
 * Replay cost of a durable-functions orchestration as its history grows. The SDK replays the whole history on every
 * episode, so a saga with n sequential steps costs O(n^2) event-processing in total; this measures what that means in
 * wall time on this machine, through the real replay engine driven by the Durable simulator.
 * Prints one JSON line: per step count, episodes, total ms, ms per episode, and history events at the end.
 */
import { performance } from "node:perf_hooks";
import { installFunctionsCore } from "../test/functions-host/index.js";
import { runBench } from "./support/main.js";

async function replayCost(options: { quick: boolean }): Promise<Record<string, unknown>> {
  installFunctionsCore();
  const df = await import("durable-functions");
  const { DurableSimulator } = await import("../test/durable/index.js");
  df.app.activity("bench_step", { handler: (n: number) => n + 1 });
  df.app.orchestration("bench_chain", function* (context) {
    const steps = context.df.getInput<number>();
    let value = 0;
    for (let i = 0; i < steps; i++) value = (yield context.df.callActivity("bench_step", value)) as number;
    return value;
  });

  const sizes = options.quick ? [5, 20] : [10, 25, 50, 100, 200];
  const rows = [];
  for (const steps of sizes) {
    const sim = new DurableSimulator();
    const started = performance.now();
    const id = sim.startNew("bench_chain", { input: steps });
    const status = await sim.runToCompletion(id);
    const ms = performance.now() - started;
    if (status.output !== steps) throw new Error(`chain of ${steps} returned ${String(status.output)}`);
    const episodes = steps + 1;
    rows.push({ steps, episodes, totalMs: round(ms), msPerEpisode: round(ms / episodes), historyEvents: sim.history(id).length });
    sim.close();
  }
  return { rows };
}

const round = (n: number): number => Math.round(n * 100) / 100;

runBench("replay-cost", replayCost, { worker: true });
