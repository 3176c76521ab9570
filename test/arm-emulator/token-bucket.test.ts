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

  it("reports an endless wait when it never refills", () => {
    const bucket = new TokenBucket({ burst: 1, refillPerSecond: 0 }, 0);
    bucket.take(0);
    expect(bucket.msUntilNextToken(1e9)).toBe(Number.POSITIVE_INFINITY);
  });
});
