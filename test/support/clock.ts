/**
 * Time source shared by the stand-ins. Emulators and the Durable simulator read time only through a Clock, so one
 * ManualClock can drive ARM throttling, LRO timing and orchestration timers in the same emulated timeline, and a
 * WallClock can drive them in real time for the local sandbox.
 */
export interface Clock {
  /** Milliseconds since the Unix epoch, like Date.now(). */
  now(): number;
}

export class WallClock implements Clock {
  now(): number {
    return Date.now();
  }
}

/** A clock that moves only when told to. Starts at a fixed instant so recorded times are reproducible. */
export class ManualClock implements Clock {
  private t: number;

  constructor(start: Date | number = Date.UTC(2030, 0, 1)) {
    this.t = typeof start === "number" ? start : start.getTime();
  }

  now(): number {
    return this.t;
  }

  advance(ms: number): number {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`cannot advance a clock by ${ms} ms`);
    this.t += ms;
    return this.t;
  }

  set(at: Date | number): void {
    const next = typeof at === "number" ? at : at.getTime();
    if (next < this.t) throw new RangeError("a ManualClock never goes backwards");
    this.t = next;
  }
}
