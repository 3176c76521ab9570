/**
 * A token bucket on an injected timeline. Tokens are kept in thousandths so integer refill rates over whole
 * milliseconds stay exact: a test that advances a ManualClock by 500 ms at 2 tokens/s gets exactly one token.
 */

export interface BucketLimits {
  /** Bucket size: how many requests may go through back to back. */
  burst: number;
  /** Tokens added per second of emulated time. */
  refillPerSecond: number;
}

const MILLI = 1000;

export class TokenBucket {
  private milliTokens: number;
  private lastRefillAt: number;
  /** Refill that found the bucket full and was lost: capacity nobody used. */
  private discardedMilli = 0;

  constructor(
    readonly limits: BucketLimits,
    now: number,
  ) {
    this.milliTokens = limits.burst * MILLI;
    this.lastRefillAt = now;
  }

  available(now: number): number {
    this.refill(now);
    return Math.floor(this.milliTokens / MILLI);
  }

  canTake(now: number): boolean {
    this.refill(now);
    return this.milliTokens >= MILLI;
  }

  /** Removes one token; callers check `canTake` first so a refused request costs nothing. */
  take(now: number): void {
    this.refill(now);
    this.milliTokens = Math.max(0, this.milliTokens - MILLI);
  }

  /** Emulated milliseconds until one whole token is available (0 when one already is). */
  msUntilNextToken(now: number): number {
    this.refill(now);
    if (this.milliTokens >= MILLI) return 0;
    if (this.limits.refillPerSecond <= 0) return Number.POSITIVE_INFINITY;
    return Math.ceil((MILLI - this.milliTokens) / this.limits.refillPerSecond);
  }

  /** Tokens the refill has lost so far because the bucket was full. */
  discarded(now: number): number {
    this.refill(now);
    return this.discardedMilli / MILLI;
  }

  private refill(now: number): void {
    if (now <= this.lastRefillAt) return;
    const added = (now - this.lastRefillAt) * this.limits.refillPerSecond;
    const kept = Math.min(added, this.limits.burst * MILLI - this.milliTokens);
    this.discardedMilli += added - kept;
    this.milliTokens += kept;
    this.lastRefillAt = now;
  }
}
