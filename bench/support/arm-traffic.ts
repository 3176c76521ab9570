/**
 * Folds the ARM emulator's request log into counters as the run goes (the log is then cleared, so a 10,000-node run
 * does not keep every request body in memory): requests by route and status, and the emulated times of the first and
 * last admitted write, which bound the window the write rate is measured over.
 */
import type { ArmEmulator, OpClass } from "../../test/arm-emulator/index.js";

export class ArmTraffic {
  readonly byRoute = new Map<string, { admitted: number; throttled: number; failed: number }>();
  readonly admitted: Record<OpClass, number> = { reads: 0, writes: 0, deletes: 0 };
  readonly throttled: Record<OpClass, number> = { reads: 0, writes: 0, deletes: 0 };
  firstWriteAt: number | undefined;
  lastWriteAt: number | undefined;
  /** Admitted writes per emulated second, for the busiest-second figure. */
  private readonly writesPerSecond = new Map<number, number>();

  constructor(private readonly arm: ArmEmulator) {}

  /** Takes every request logged since the last call. */
  fold(): void {
    for (const e of this.arm.requests.entries) {
      const key = e.route ?? `${e.method} (unrouted)`;
      const row = this.byRoute.get(key) ?? { admitted: 0, throttled: 0, failed: 0 };
      if (e.throttled) {
        row.throttled++;
        this.throttled[e.opClass]++;
      } else {
        row.admitted++;
        this.admitted[e.opClass]++;
        if (e.status >= 400 || e.status === 0) row.failed++;
        if (e.opClass === "writes") {
          this.firstWriteAt ??= e.at;
          this.lastWriteAt = e.at;
          const second = Math.floor(e.at / 1000);
          this.writesPerSecond.set(second, (this.writesPerSecond.get(second) ?? 0) + 1);
        }
      }
      this.byRoute.set(key, row);
    }
    this.arm.requests.clear();
  }

  /** The most writes admitted in any one emulated second (the burst draining shows here). */
  peakWritesInOneSecond(): number {
    let peak = 0;
    for (const n of this.writesPerSecond.values()) peak = Math.max(peak, n);
    return peak;
  }

  /**
   * Admitted writes per `bucketSec` emulated seconds from the first write, e.g. "200 100 100 … 12": where the bucket
   * idled (a low figure mid-run) shows at a glance.
   */
  timeline(bucketSec = 10): string {
    if (this.firstWriteAt === undefined || this.lastWriteAt === undefined) return "";
    const first = Math.floor(this.firstWriteAt / 1000);
    const counts = new Array<number>(Math.floor((Math.floor(this.lastWriteAt / 1000) - first) / bucketSec) + 1).fill(0);
    for (const [second, n] of this.writesPerSecond) counts[Math.floor((second - first) / bucketSec)]! += n;
    return counts.join(" ");
  }

  routes(): Record<string, { admitted: number; throttled: number; failed: number }> {
    return Object.fromEntries([...this.byRoute].sort(([a], [b]) => a.localeCompare(b)));
  }
}
