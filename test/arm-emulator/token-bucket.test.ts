import { describe, expect, it } from "vitest";
import { TokenBucket } from "./token-bucket.js";

describe("TokenBucket", () => {
  it("starts full, empties one token per take and refills exactly on the injected timeline", () => {
    const bucket = new TokenBucket({ burst: 3, refillPerSecond: 10 }, 1_000);
    for (let i = 0; i < 3; i++) {
      expect(bucket.canTake(1_000)).toBe(true);
      bucket.take(1_000);
    }
    expect(bucket.canTake(1_000)).toBe(false);
    expect(bucket.msUntilNextToken(1_000)).toBe(100);
    expect(bucket.canTake(1_099)).toBe(false);
    expect(bucket.msUntilNextToken(1_099)).toBe(1);
    expect(bucket.canTake(1_100)).toBe(true);
    expect(bucket.available(1_100)).toBe(1);
  });

  it("never holds more than the burst and ignores time going backwards", () => {
    const bucket = new TokenBucket({ burst: 2, refillPerSecond: 1 }, 0);
    expect(bucket.available(60_000)).toBe(2);
    bucket.take(60_000);
    expect(bucket.available(30_000)).toBe(1);
    expect(bucket.available(60_999)).toBe(1);
    expect(bucket.available(61_000)).toBe(2);
  });

  it("counts the refill it loses while full, and none while it has room", () => {
    const bucket = new TokenBucket({ burst: 2, refillPerSecond: 1 }, 0);
    expect(bucket.discarded(5_000)).toBe(5);
    bucket.take(5_000);
    bucket.take(5_000);
    // 1.5 s of refill into an empty bucket of 2: nothing lost.
    expect(bucket.discarded(6_500)).toBe(5);
    // Full at 7 s; the next 3 s are lost.
    expect(bucket.discarded(10_000)).toBe(8);
    expect(bucket.available(10_000)).toBe(2);
  });

  it("reports an endless wait when it never refills", () => {
    const bucket = new TokenBucket({ burst: 1, refillPerSecond: 0 }, 0);
    bucket.take(0);
    expect(bucket.msUntilNextToken(1e9)).toBe(Number.POSITIVE_INFINITY);
  });
});
