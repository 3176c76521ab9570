/**
 * Drives the Durable simulator and everything else that happens at an emulated instant (agents answering, nodes
 * retrying their enrolment) on one ManualClock: do all the work due now, then jump to the earliest thing due next.
 * The ARM emulator reads the same clock, so its token buckets refill in the same timeline as the saga's retries.
 */
import type { DurableSimulator } from "../../test/durable/index.js";
import type { ManualClock } from "../../test/support/index.js";

/** Something that has work at emulated instants besides the simulator's own timers. */
export interface TimedSource {
  nextDueAt(): number | undefined;
  /** Does the work due now; returns how many things it did (0 = nothing was due). */
  runDue(): Promise<number>;
}

export interface VirtualTimeRun {
  simulator: DurableSimulator;
  clock: ManualClock;
  sources: readonly TimedSource[];
  /** True when the run has reached its goal. */
  done(): boolean;
  /** Called after each pass (housekeeping: fold logs, purge finished instances). */
  afterPass?(): Promise<void> | void;
  /** Bounds the loop; a run that needs more passes is reported as stuck. */
  maxPasses?: number;
}

export class StuckError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StuckError";
  }
}

/** Returns the number of passes made. */
export async function runInVirtualTime(run: VirtualTimeRun): Promise<number> {
  const maxPasses = run.maxPasses ?? 10_000_000;
  for (let pass = 1; pass <= maxPasses; pass++) {
    await run.simulator.runUntilIdle({ maxSteps: Number.MAX_SAFE_INTEGER });
    let worked = 0;
    for (const source of run.sources) worked += await source.runDue();
    await run.afterPass?.();
    if (worked > 0) continue;
    if (run.done()) return pass;
    const candidates = [run.simulator.nextTimerAt(), ...run.sources.map((s) => s.nextDueAt())].filter((t): t is number => t !== undefined);
    if (candidates.length === 0) throw new StuckError("nothing is due and the run is not done: a saga waits for an event nobody will send");
    run.clock.set(Math.max(run.clock.now(), Math.min(...candidates)));
  }
  throw new StuckError(`the run did not finish within ${maxPasses} passes`);
}
