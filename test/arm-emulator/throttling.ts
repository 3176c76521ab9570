/**
 * ARM's request throttling: a token bucket per caller principal per operation class per subscription, plus a
 * subscription-wide bucket shared by all principals (15x the per-principal limits by default). Reported through the
 * `x-ms-ratelimit-remaining-*` headers, refused with 429 and a whole-second Retry-After.
 */
import type { Clock } from "../support/index.js";
import { ArmError } from "./arm-error.js";
import { TokenBucket, type BucketLimits } from "./token-bucket.js";

export type OpClass = "reads" | "writes" | "deletes";

export interface ThrottlingOptions {
  reads?: BucketLimits;
  writes?: BucketLimits;
  deletes?: BucketLimits;
  /** Size of the all-principals subscription bucket relative to a principal's; `false` disables it. */
  globalMultiplier?: number | false;
}

/** Regional token-bucket limits from the ARM throttling documentation. */
export const ARM_DEFAULT_LIMITS: Record<OpClass, BucketLimits> = {
  reads: { burst: 250, refillPerSecond: 25 },
  writes: { burst: 200, refillPerSecond: 10 },
  deletes: { burst: 200, refillPerSecond: 10 },
};

const DEFAULT_GLOBAL_MULTIPLIER = 15;

export function opClassOf(method: string): OpClass {
  switch (method.toUpperCase()) {
    case "DELETE":
      return "deletes";
    case "PUT":
    case "PATCH":
    case "POST":
      return "writes";
    default:
      return "reads";
  }
}

export interface Admission {
  headers: Record<string, string>;
}

export class Throttler {
  private readonly buckets = new Map<string, TokenBucket>();
  private readonly limits: Record<OpClass, BucketLimits> | undefined;
  private readonly globalMultiplier: number | undefined;

  constructor(
    options: ThrottlingOptions | false,
    private readonly clock: Clock,
  ) {
    if (options === false) {
      this.limits = undefined;
      this.globalMultiplier = undefined;
      return;
    }
    this.limits = {
      reads: options.reads ?? ARM_DEFAULT_LIMITS.reads,
      writes: options.writes ?? ARM_DEFAULT_LIMITS.writes,
      deletes: options.deletes ?? ARM_DEFAULT_LIMITS.deletes,
    };
    const multiplier = options.globalMultiplier ?? DEFAULT_GLOBAL_MULTIPLIER;
    this.globalMultiplier = multiplier === false ? undefined : multiplier;
  }

  get enabled(): boolean {
    return this.limits !== undefined;
  }

  /** Takes a token for the request or throws the 429 ARM answers with. */
  admit(principalId: string, subscriptionId: string | undefined, opClass: OpClass): Admission {
    if (!this.limits) return { headers: {} };
    const now = this.clock.now();
    const scope = subscriptionId === undefined ? "tenant" : "subscription";
    const scopeKey = subscriptionId?.toLowerCase() ?? "tenant";
    const own = this.bucket(`${principalId.toLowerCase()}|${scopeKey}|${opClass}`, this.limits[opClass]);
    const global =
      this.globalMultiplier === undefined ? undefined : this.bucket(`*|${scopeKey}|${opClass}`, scaled(this.limits[opClass], this.globalMultiplier));

    const refusedBy = [own, global].find((b) => b !== undefined && !b.canTake(now));
    if (refusedBy === undefined) {
      own.take(now);
      global?.take(now);
    }
    const headers: Record<string, string> = {
      [`x-ms-ratelimit-remaining-${scope}-${opClass}`]: String(own.available(now)),
    };
    if (global) headers[`x-ms-ratelimit-remaining-${scope}-global-${opClass}`] = String(global.available(now));
    if (refusedBy === undefined) return { headers };

    const retryAfterSeconds = Math.max(1, Math.ceil(refusedBy.msUntilNextToken(now) / 1000));
    const kind = opClass.slice(0, -1);
    const where = subscriptionId === undefined ? "the tenant" : `subscription '${subscriptionId}'`;
    const actor = refusedBy === own ? ` actor '${principalId}'` : "";
    throw new ArmError(
      429,
      subscriptionId === undefined ? "TenantRequestsThrottled" : "SubscriptionRequestsThrottled",
      `Number of '${kind}' requests for ${where}${actor} exceeded. Please try again after '${retryAfterSeconds}' seconds after additional tokens are available. Refer to https://aka.ms/arm-throttling`,
      { ...headers, "retry-after": String(retryAfterSeconds) },
    );
  }

  /** The caller's own bucket for a subscription and class, if it has made such a request. */
  bucketOf(principalId: string, subscriptionId: string, opClass: OpClass): TokenBucket | undefined {
    return this.buckets.get(`${principalId.toLowerCase()}|${subscriptionId.toLowerCase()}|${opClass}`);
  }

  reset(): void {
    this.buckets.clear();
  }

  private bucket(key: string, limits: BucketLimits): TokenBucket {
    let bucket = this.buckets.get(key);
    if (!bucket) {
      bucket = new TokenBucket(limits, this.clock.now());
      this.buckets.set(key, bucket);
    }
    return bucket;
  }
}

function scaled(limits: BucketLimits, factor: number): BucketLimits {
  return { burst: limits.burst * factor, refillPerSecond: limits.refillPerSecond * factor };
}
