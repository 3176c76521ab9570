/**
 * The machine a figure was measured on, printed with it: benchmark figures depend on the CPU and on whatever else
 * ran at the same time (the load average says how busy the machine was).
 */
import { cpus, loadavg } from "node:os";
import { round } from "./stats.js";

export interface MachineSample {
  cpus: number;
  cpuModel: string;
  loadAvg1m: number;
}

export function sampleMachine(): MachineSample {
  const list = cpus();
  return { cpus: list.length, cpuModel: list[0]?.model.trim() ?? "unknown", loadAvg1m: round(loadavg()[0] ?? 0, 2) };
}

/** Wraps a benchmark's figures with the machine before and after. */
export async function onMachine(measure: () => Promise<Record<string, unknown>>): Promise<Record<string, unknown>> {
  const before = sampleMachine();
  const figures = await measure();
  const after = sampleMachine();
  return { ...figures, machine: { cpus: before.cpus, cpuModel: before.cpuModel, loadAvg1mAtStart: before.loadAvg1m, loadAvg1mAtEnd: after.loadAvg1m } };
}
