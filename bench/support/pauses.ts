/**
 * This process's own pauses while a measurement runs: how late its event loop ran a timer, and its longest
 * garbage-collection pause. A tail latency far above both came from somewhere else (another process, the machine).
 */
import { monitorEventLoopDelay, PerformanceObserver } from "node:perf_hooks";

export interface Pauses {
  eventLoopDelayP99Ms: number;
  eventLoopDelayMaxMs: number;
  gcPauseMaxMs: number;
}

export function watchPauses(): { stop(): Pauses } {
  const delay = monitorEventLoopDelay({ resolution: 5 });
  delay.enable();
  let gcPauseMaxMs = 0;
  const gc = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) gcPauseMaxMs = Math.max(gcPauseMaxMs, entry.duration);
  });
  gc.observe({ entryTypes: ["gc"] });
  return {
    stop: () => {
      delay.disable();
      gc.disconnect();
      // The histogram's figures include the sampling resolution; they are nanoseconds.
      return { eventLoopDelayP99Ms: delay.percentile(99) / 1e6, eventLoopDelayMaxMs: delay.max / 1e6, gcPauseMaxMs };
    },
  };
}
