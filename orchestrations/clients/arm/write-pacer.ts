/**
 * Paces the service's own ARM requests so ARM's throttle is never what stops them: every 429 ARM answers is a request
 * refused to every other workload of the subscription as well (the subscription-wide bucket is shared by all callers).
 *
 * Model (MicrosoftDocs "Understand how Azure Resource Manager throttles requests", 2024+ regional throttling): a token
 * bucket per subscription, per principal, per operation class (writes 200 / 10 s⁻¹, deletes 200 / 10 s⁻¹, reads
 * 250 / 25 s⁻¹), plus the subscription-wide bucket, 15× that, shared by every principal. ARM reports both on each
 * response (`x-ms-ratelimit-remaining-subscription-{class}` and `…-global-{class}`), so the pacer keeps an estimate of
 * each bucket that refills as documented between responses and is reset from every response's headers: the headers
 * see what the estimate cannot (other instances of this app on the same principal, other workloads on the global
 * bucket, a limit other than the documented one).
 *
 * Why one pacer per process, as core-rest-pipeline policies on the ARM clients (built once in the composition root):
 * the bucket belongs to the principal, so every saga, sweeper and route of the process must draw from one estimate;
 * a policy sees every request of every client without the activities knowing.
 *
 * Why fail fast instead of waiting: an activity that sleeps holds a worker slot and its time is wall time. When the
 * estimate has no token the request is not sent; the policy throws the 429 RestError the saga already honours (see
 * orchestrations/onboard/retry-after.ts), carrying the wait the bucket model computes in `retry-after-ms`, and the
 * saga waits on a durable timer. Only waits up to `absorbUpToMs` are slept in-process (a durable timer costs more).
 *
 * Why reservations (fairness): a refused request is given a slot — the instant the bucket will have a token for it
 * after every earlier refused request has had one — and that token is promised to it: a newcomer may send only when
 * the estimate has a token beyond every outstanding promise. A request is recognised when it comes back by its method
 * and URL (the service's ARM names are deterministic, so a retried write is the same PUT to the same URL). So waits are
 * first come, first served across sagas and pools, and no caller is refused forever. A promise whose holder never
 * comes back is forgotten after `reservationGraceMs`.
 *
 * Why oldest saga first: a request is ranked by the saga it is made for (its start instant, pace-rank.ts), and a
 * token goes to the oldest ranked request waiting for one — a newcomer may send only when the estimate has a token
 * beyond every promise of an older saga, and a holder whose promise falls due waits again if older sagas' requests
 * arrived meanwhile. So a saga's next write (its grants, after its machine) goes ahead of younger sagas' first ones:
 * sagas finish their ARM work one after another and free their pool slots early and spread out, and the nodes waiting
 * for a slot get in while the bucket still has demand. First come, first served instead moves every saga of a full
 * pool through its writes in lockstep: all of them hold their slots while the bucket queues, they end together, and
 * the next nodes arrive with the bucket idle (the fleet bench: 0.50 of the bucket's bound at 500 nodes, 400 in flight,
 * first come first served; 0.80 serving role assignments first; see bench/README.md for oldest-saga-first). Nothing
 * starves: a request waits only for requests of sagas started before its own, and there are finitely many of those
 * (a pool admits maxInFlight sagas; each makes a bounded number of writes). The price is refusals: a young saga's
 * request, promised a token, is refused again when older sagas' next writes arrived in the meantime (the fleet bench
 * counts them: about 12 per saga at 500 nodes, 400 in flight); each costs an activity run and a durable timer, never
 * an ARM request, and the saga gives paced waits a budget of their own (onboard/azure-call.ts). Passing a request
 * over once at most (then first come, first served) halves the refusals but brings the lockstep back (0.83 of the
 * bound, saga p50 151 s against 117 s). Requests made outside a saga rank as started when they are made.
 */
import { currentPaceRank, paceRank } from "./pace-rank.js";
import {
  createHttpHeaders,
  createPipelineRequest,
  RestError,
  type PipelinePolicy,
  type PipelineRequest,
  type PipelineResponse,
} from "@azure/core-rest-pipeline";

export type ArmOpClass = "reads" | "writes" | "deletes";

export interface ArmBucketLimits {
  burst: number;
  refillPerSecond: number;
}

/** The documented per-principal buckets (regional throttling, 2024+). */
export const ARM_DOCUMENTED_LIMITS: Readonly<Record<ArmOpClass, ArmBucketLimits>> = {
  reads: { burst: 250, refillPerSecond: 25 },
  writes: { burst: 200, refillPerSecond: 10 },
  deletes: { burst: 200, refillPerSecond: 10 },
};
/** The subscription-wide bucket, shared by all principals, is 15× a principal's. */
export const ARM_DOCUMENTED_GLOBAL_MULTIPLIER = 15;

/** The code of the 429 the pacer answers in ARM's place: a log reader can tell it from ARM's own. */
export const PACED_CODE = "RequestPacedByClient";

export interface ArmPacerOptions {
  /** Milliseconds now; the fleet bench passes its virtual clock. Default Date.now. */
  now?: () => number;
  limits?: Partial<Record<ArmOpClass, ArmBucketLimits>>;
  globalMultiplier?: number;
  /** Waits up to this long are slept in the process instead of failing fast. Default 0. */
  absorbUpToMs?: number;
  sleep?: (ms: number) => Promise<void>;
  /** How long after its slot a promised token waits for its holder. Default 2 minutes. */
  reservationGraceMs?: number;
}

export interface ArmPacerStats {
  sent: number;
  /** Requests refused by the pacer (not sent), each with a wait. */
  deferred: number;
  /** Of those, the writes (PUT, PATCH, POST). */
  deferredWrites: number;
  /** Waits slept in the process. */
  absorbed: number;
  /** 429s ARM answered anyway: the estimate was wrong. */
  throttledByArm: number;
}

type Decision = { send: true } | { send: false; waitMs: number };

export class ArmPacer {
  readonly stats: ArmPacerStats = { sent: 0, deferred: 0, deferredWrites: 0, absorbed: 0, throttledByArm: 0 };
  private readonly lanes = new Map<string, Lane>();
  private readonly now: () => number;
  private readonly limits: Record<ArmOpClass, ArmBucketLimits>;
  private readonly globalMultiplier: number;
  private readonly absorbUpToMs: number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly graceMs: number;
  /** Which lane and send sequence a request in flight belongs to, for the header correction. */
  private readonly sent = new WeakMap<PipelineRequest, { lane: Lane; seq: number }>();
  /** Requests given their token by `reserve` ahead of sending (request id → until when the token is kept). */
  private readonly reserved = new Map<string, number>();

  constructor(options: ArmPacerOptions = {}) {
    this.now = options.now ?? Date.now;
    this.limits = { ...ARM_DOCUMENTED_LIMITS, ...options.limits };
    this.globalMultiplier = options.globalMultiplier ?? ARM_DOCUMENTED_GLOBAL_MULTIPLIER;
    this.absorbUpToMs = options.absorbUpToMs ?? 0;
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.graceMs = options.reservationGraceMs ?? 120_000;
  }

  /**
   * The two policies to add to a client: the gate runs once per operation, outside the SDK's own retries (a refusal
   * must reach the saga, not be slept on by the retry policy); the observer runs on every attempt, to read every
   * response's headers.
   */
  policies(): Array<{ policy: PipelinePolicy; position: "perCall" | "perRetry" }> {
    return [
      { policy: { name: "armPacerGate", sendRequest: (request, next) => this.gate(request, next) }, position: "perCall" },
      { policy: { name: "armPacerObserve", sendRequest: (request, next) => this.observe(request, next) }, position: "perRetry" },
    ];
  }

  /** Takes a token for `id` (ranked `rank`, default: made now) now, or says how long to wait for the one promised to it. */
  decide(subscriptionId: string, opClass: ArmOpClass, id: string, rank?: string): Decision {
    const now = this.now();
    return this.lane(subscriptionId, opClass).decide(id, rank ?? paceRank(now, ""), now);
  }

  /** How many refused requests of the subscription's class wait for the token promised to them. */
  waiting(subscriptionId: string, opClass: ArmOpClass): number {
    return this.lanes.get(`${subscriptionId.toLowerCase()}|${opClass}`)?.waiting(this.now()) ?? 0;
  }

  /**
   * Takes the token for a request about to be made (`method` on `url`, the resource's ARM URL or path), or throws the
   * paced 429 the request itself would have. For an activity that must write something down before its request and
   * would otherwise do so again on every paced attempt (a registry write per refusal): it asks first. The token is
   * kept for the request for a minute; the request then passes the gate without taking another.
   */
  async reserve(method: string, url: string): Promise<void> {
    const target = laneOf({ method, url });
    if (!target) return;
    const id = requestId(method, url);
    for (const [held, until] of this.reserved) if (until < this.now()) this.reserved.delete(held);
    if (this.reserved.has(id)) return;
    const request = createPipelineRequest({ method: method.toUpperCase() as "PUT", url: absoluteUrl(url) });
    await this.acquire(this.lane(target.subscriptionId, target.opClass), id, request, target);
    this.reserved.set(id, this.now() + RESERVED_FOR_MS);
  }

  private async gate(request: PipelineRequest, next: (request: PipelineRequest) => Promise<PipelineResponse>): Promise<PipelineResponse> {
    const target = laneOf(request);
    if (!target) return next(request);
    const lane = this.lane(target.subscriptionId, target.opClass);
    const id = requestId(request.method, request.url);
    const reservedUntil = this.reserved.get(id);
    this.reserved.delete(id);
    if (reservedUntil === undefined || reservedUntil < this.now()) await this.acquire(lane, id, request, target);
    this.stats.sent++;
    const seq = lane.startSend();
    this.sent.set(request, { lane, seq });
    try {
      return await next(request);
    } finally {
      lane.endSend(seq);
    }
  }

  /** Takes a token for `id` in its saga's order, sleeping waits up to `absorbUpToMs`; throws the paced 429 otherwise. */
  private async acquire(lane: Lane, id: string, request: PipelineRequest, target: { subscriptionId: string; opClass: ArmOpClass }): Promise<void> {
    const rank = currentPaceRank() ?? paceRank(this.now(), "");
    for (let absorbed = 0; ; absorbed++) {
      const decision = lane.decide(id, rank, this.now());
      if (decision.send) return;
      if (decision.waitMs > this.absorbUpToMs || absorbed >= 3) {
        this.stats.deferred++;
        if (target.opClass === "writes") this.stats.deferredWrites++;
        throw pacedError(request, decision.waitMs, target);
      }
      this.stats.absorbed++;
      await this.sleep(decision.waitMs);
    }
  }

  private async observe(request: PipelineRequest, next: (request: PipelineRequest) => Promise<PipelineResponse>): Promise<PipelineResponse> {
    const response = await next(request);
    const sent = this.sent.get(request);
    if (!sent) return response;
    if (response.status === 429) this.stats.throttledByArm++;
    sent.lane.observe(response, sent.seq, this.now());
    return response;
  }

  private lane(subscriptionId: string, opClass: ArmOpClass): Lane {
    const key = `${subscriptionId.toLowerCase()}|${opClass}`;
    let lane = this.lanes.get(key);
    if (!lane) {
      const own = this.limits[opClass];
      const global = { burst: own.burst * this.globalMultiplier, refillPerSecond: own.refillPerSecond * this.globalMultiplier };
      lane = new Lane(opClass, own, global, this.now(), this.graceMs);
      this.lanes.set(key, lane);
    }
    return lane;
  }
}

/** One bucket's estimate: refills as documented, set from ARM's header whenever one arrives. */
class Estimate {
  private tokens: number;
  private at: number;

  constructor(
    private readonly limits: ArmBucketLimits,
    now: number,
  ) {
    this.tokens = limits.burst;
    this.at = now;
  }

  level(now: number): number {
    if (now > this.at) {
      if (this.tokens < this.limits.burst) this.tokens = Math.min(this.limits.burst, this.tokens + ((now - this.at) * this.limits.refillPerSecond) / 1000);
      this.at = now;
    }
    return this.tokens;
  }

  take(now: number): void {
    this.tokens = this.level(now) - 1;
  }

  set(tokens: number, now: number): void {
    this.level(now);
    this.tokens = tokens;
  }

  /** Milliseconds until the estimate holds `n` tokens (0 if it does). */
  msUntil(n: number, now: number): number {
    const missing = n - this.level(now);
    return missing <= 0 ? 0 : Math.ceil((missing * 1000) / this.limits.refillPerSecond);
  }
}

/** The estimates, promises and sends in flight of one subscription and operation class. */
class Lane {
  private readonly own: Estimate;
  private readonly global: Estimate;
  /** Request id → the instant its promised token is due, and the rank it waits with (pace-rank.ts). */
  private readonly promised = new Map<string, { due: number; rank: string }>();
  private readonly inFlight = new Set<number>();
  private seq = 0;
  /** A Retry-After from ARM: nothing is sent before it. */
  private notBefore = 0;

  constructor(
    private readonly opClass: ArmOpClass,
    own: ArmBucketLimits,
    global: ArmBucketLimits,
    now: number,
    private readonly graceMs: number,
  ) {
    this.own = new Estimate(own, now);
    this.global = new Estimate(global, now);
  }

  waiting(now: number): number {
    this.forgetLapsed(now);
    return this.promised.size;
  }

  decide(id: string, rank: string, now: number): Decision {
    this.forgetLapsed(now);
    if (now < this.notBefore) return { send: false, waitMs: this.notBefore - now };
    const held = this.promised.get(id);
    if (held !== undefined && now < held.due) return { send: false, waitMs: held.due - now };
    // A holder keeps the rank it first waited with: a retried request is the same saga's.
    const mine = held?.rank ?? rank;
    const ahead = this.olderPromises(id, mine);
    if (this.tokensBeyond(ahead, now) >= 1) {
      this.promised.delete(id);
      return this.take(now);
    }
    // A newcomer, or a holder whose token went to older sagas' requests that arrived after its promise was made (or
    // the headers said the bucket holds less than modelled): the token after every older one's.
    const due = now + this.msUntil(ahead + 1, now);
    this.promised.set(id, { due, rank: mine });
    return { send: false, waitMs: due - now };
  }

  /** Promises whose holder did not come back within the grace period. */
  private forgetLapsed(now: number): void {
    for (const [held, p] of this.promised) if (p.due + this.graceMs < now) this.promised.delete(held);
  }

  /** Promises of requests ranked before `rank` (same rank: the earlier id), other than `except`'s. */
  private olderPromises(except: string, rank: string): number {
    let n = 0;
    for (const [id, p] of this.promised) if (id !== except && (p.rank < rank || (p.rank === rank && id < except))) n++;
    return n;
  }

  startSend(): number {
    this.inFlight.add(++this.seq);
    return this.seq;
  }

  endSend(seq: number): void {
    this.inFlight.delete(seq);
  }

  /** Resets the estimates from ARM's answer to the request sent as `seq`, less what was sent after it. */
  observe(response: PipelineResponse, seq: number, now: number): void {
    let sentAfter = 0;
    for (const s of this.inFlight) if (s > seq) sentAfter++;
    const own = remainingHeader(response, `x-ms-ratelimit-remaining-subscription-${this.opClass}`);
    const global = remainingHeader(response, `x-ms-ratelimit-remaining-subscription-global-${this.opClass}`);
    if (own !== undefined) this.own.set(own - sentAfter, now);
    if (global !== undefined) this.global.set(global - sentAfter, now);
    if (response.status === 429) {
      if (own === undefined && global === undefined) this.own.set(0, now);
      const retryAfterMs = retryAfterMsOf(response);
      if (retryAfterMs !== undefined) this.notBefore = Math.max(this.notBefore, now + retryAfterMs);
    }
  }

  private tokensBeyond(promises: number, now: number): number {
    return Math.min(this.own.level(now), this.global.level(now)) - promises;
  }

  private msUntil(n: number, now: number): number {
    return Math.max(this.own.msUntil(n, now), this.global.msUntil(n, now));
  }

  private take(now: number): Decision {
    this.own.take(now);
    this.global.take(now);
    return { send: true };
  }
}

const SUBSCRIPTION_IN_PATH = /^\/+subscriptions\/([^/?#]+)/i;
/** How long a token `reserve` took waits for its request: an activity sends it right after its registry write. */
const RESERVED_FOR_MS = 60_000;

const pathOf = (url: string): string => url.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/]+/i, "");

/** A request as the pacer knows it across attempts: method and resource path (ARM paths are case-insensitive; no query). */
function requestId(method: string, url: string): string {
  return `${method.toUpperCase()} ${pathOf(url).split("?")[0]!.replace(/\/+/g, "/").toLowerCase()}`;
}

const absoluteUrl = (url: string): string =>
  /^[a-z][a-z0-9+.-]*:\/\//i.test(url) ? url : `https://management.azure.com${url.startsWith("/") ? "" : "/"}${url}`;

/** The bucket a request draws from: ARM's operation classes by method; requests outside a subscription are not paced. */
function laneOf(request: { method: string; url: string }): { subscriptionId: string; opClass: ArmOpClass } | undefined {
  const path = pathOf(request.url);
  const subscriptionId = SUBSCRIPTION_IN_PATH.exec(path)?.[1];
  if (!subscriptionId) return undefined;
  const method = request.method.toUpperCase();
  const opClass: ArmOpClass = method === "DELETE" ? "deletes" : method === "GET" || method === "HEAD" ? "reads" : "writes";
  return { subscriptionId, opClass };
}

/** ARM's remaining-requests header as a number; absent or malformed → undefined (the estimate stays). */
export function remainingHeader(response: PipelineResponse, name: string): number | undefined {
  const raw = response.headers.get(name);
  if (raw === undefined || !/^\s*\d+\s*$/.test(raw)) return undefined;
  return Number(raw);
}

function retryAfterMsOf(response: PipelineResponse): number | undefined {
  for (const [name, unitMs] of [
    ["retry-after-ms", 1],
    ["x-ms-retry-after-ms", 1],
    ["retry-after", 1000],
  ] as const) {
    const value = Number(response.headers.get(name) ?? Number.NaN);
    if (Number.isFinite(value) && value >= 0) return value * unitMs;
  }
  return undefined;
}

/** The 429 the saga honours (retry-after.ts), answered in ARM's place; `retry-after-ms` carries the modelled wait. */
function pacedError(request: PipelineRequest, waitMs: number, target: { subscriptionId: string; opClass: ArmOpClass }): RestError {
  const wait = Math.max(1, Math.ceil(waitMs));
  const message = `Not sent: the ${target.opClass} bucket of subscription '${target.subscriptionId}' has no token for this request for another ${wait} ms (paced by the service before ARM would throttle it).`;
  const response: PipelineResponse = {
    request,
    status: 429,
    headers: createHttpHeaders({
      "retry-after-ms": String(wait),
      "retry-after": String(Math.ceil(wait / 1000)),
      "content-type": "application/json",
    }),
    bodyAsText: JSON.stringify({ error: { code: PACED_CODE, message } }),
  };
  return new RestError(message, { code: PACED_CODE, statusCode: 429, request, response });
}
