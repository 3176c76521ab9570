/**
 * Point reads of one row that overlap share one request: a caller that asks while a read of the same key is in
 * flight gets that read's answer instead of sending its own. The answer is then at most one round trip older than
 * the caller's own read would have been, which is no more than a read racing a write is anyway; a write by this
 * process forgets the read in flight, so whatever asks after the write has returned reads afresh.
 *
 * Why: every enrolment of a pool reads the pool's row, and at fleet speed most of those reads overlap (issue 16's
 * enrolment benchmark). Callers share the parsed answer and must not change it.
 */
export class SharedReads<T> {
  private readonly inFlight = new Map<string, Promise<T>>();

  read(key: string, read: () => Promise<T>): Promise<T> {
    const pending = this.inFlight.get(key);
    if (pending) return pending;
    const started = read().finally(() => {
      if (this.inFlight.get(key) === started) this.inFlight.delete(key);
    });
    this.inFlight.set(key, started);
    return started;
  }

  /** After a write of `key`: callers from now on read afresh. */
  forget(key: string): void {
    this.inFlight.delete(key);
  }
}
