/**
 * The service's ARM pacer (orchestrations/clients/arm/write-pacer.ts) on the service's own ArmClients, against the
 * emulator's token buckets, everything on one virtual clock. Callers behave as sagas do: a paced (or throttled)
 * write comes back after the wait it was given, plus whatever lateness the test adds.
 */
import type { RestError } from "@azure/core-rest-pipeline";
import { createHttpHeaders, createPipelineRequest, type PipelineResponse } from "@azure/core-rest-pipeline";
import { describe, expect, it } from "vitest";
import { ArmClients } from "../../orchestrations/clients/arm/arm-clients.js";
import { pathArg } from "../../orchestrations/clients/arm/resource-id.js";
import { paceRank, withPaceRank } from "../../orchestrations/clients/arm/pace-rank.js";
import { ArmPacer, PACED_CODE, remainingHeader } from "../../orchestrations/clients/arm/write-pacer.js";
import { ArmThrottledError } from "../../orchestrations/onboard/retry-after.js";
import { seededRandom, type ManualClock } from "../support/index.js";
import type { ArmEmulator } from "./arm-emulator.js";
import { emulatorCredential } from "./credential.js";
import { BUILT_IN_ROLES, roleDefinitionId } from "./role-definitions.js";
import { newEmulator, RG_SCOPE, SERVICE_PRINCIPAL_ID, serviceCredential, SUBSCRIPTION_ID } from "./test-fixtures.js";

const READER = roleDefinitionId(BUILT_IN_ROLES.Reader, SUBSCRIPTION_ID);
/**
 * Refusals of one write when older sagas' writes keep arriving ahead of it (each refusal an activity run and a timer,
 * no ARM request): a tenth of the saga's budget for paced waits (200, orchestrations/onboard/azure-call.ts).
 */
const MAX_PACED_REFUSALS = 20;

function guid(n: number): string {
  return `00000000-0000-4000-8000-${n.toString(16).padStart(12, "0")}`;
}

function clients(emulator: ArmEmulator, pacer: ArmPacer | undefined, principal = SERVICE_PRINCIPAL_ID): ArmClients {
  const credential = principal === SERVICE_PRINCIPAL_ID ? serviceCredential : emulatorCredential(principal);
  return new ArmClients({ credential, httpClient: emulator.httpClient, retryOptions: { maxRetries: 0 }, ...(pacer ? { pacer } : {}) });
}

interface Write {
  caller: number;
  n: number;
  /** Its place among its caller's writes, from 0. */
  k: number;
  /** Refusals (paced or throttled) before it went through. */
  refusals: number;
  firstTriedAt?: number;
  doneAt?: number;
}

/**
 * Runs every caller's writes in virtual time: at each instant, every write due is sent concurrently; a refused one is
 * due again after its wait plus `lateness()`. A caller sends its next write when the previous one is done. Each caller
 * is a saga started at its `startAt` (its writes carry that rank, as the activity host sets it; ties by caller index).
 */
async function runCallers(o: {
  clock: ManualClock;
  arm: ArmClients;
  callers: Array<{ startAt: number; writes: number }>;
  lateness?: () => number;
  /** Where a caller's k-th write goes (default: the resource group). */
  scopeOf?: (k: number) => string;
}): Promise<Write[]> {
  const all: Write[] = [];
  const due: Array<{ at: number; write: Write; rest: number }> = [];
  let n = 0;
  o.callers.forEach((c, caller) => {
    if (c.writes > 0) due.push({ at: c.startAt, write: { caller, n: ++n, k: 0, refusals: 0 }, rest: c.writes - 1 });
  });
  const authz = o.arm.authorization(SUBSCRIPTION_ID);
  for (let pass = 0; due.length > 0; pass++) {
    if (pass > 100_000) throw new Error("callers did not finish");
    const at = Math.min(...due.map((d) => d.at));
    o.clock.set(Math.max(o.clock.now(), at));
    const now = due.filter((d) => d.at <= o.clock.now());
    for (const d of now) due.splice(due.indexOf(d), 1);
    await Promise.all(
      now.map(async (d) => {
        d.write.firstTriedAt ??= o.clock.now();
        try {
          const rank = paceRank(o.callers[d.write.caller]!.startAt, String(d.write.caller).padStart(6, "0"));
          await withPaceRank(rank, () =>
            authz.roleAssignments.create(pathArg(o.scopeOf?.(d.write.k) ?? RG_SCOPE), guid(d.write.n), {
              roleDefinitionId: READER,
              principalId: guid(1_000_000 + d.write.n),
              principalType: "ServicePrincipal",
            }),
          );
          d.write.doneAt = o.clock.now();
          all.push(d.write);
          if (d.rest > 0) due.push({ at: o.clock.now(), write: { caller: d.write.caller, n: ++n, k: d.write.k + 1, refusals: 0 }, rest: d.rest - 1 });
        } catch (error) {
          const throttled = ArmThrottledError.from(error);
          if (!(throttled instanceof ArmThrottledError)) throw error;
          d.write.refusals++;
          due.push({ at: o.clock.now() + (throttled.retryAfterMs ?? 1_000) + (o.lateness?.() ?? 0), write: d.write, rest: d.rest });
        }
      }),
    );
  }
  return all;
}

function throttledWrites(emulator: ArmEmulator): number {
  return emulator.requests.filter({ method: "PUT" }).filter((e) => e.throttled).length;
}

/** Admitted writes over the most a 200/10 s⁻¹ bucket admits between the first and the last of them. */
function ratioToBound(emulator: ArmEmulator): number {
  const admitted = emulator.requests.filter({ method: "PUT" }).filter((e) => !e.throttled);
  const windowS = Math.max(1, admitted.at(-1)!.at - admitted[0]!.at) / 1000;
  return admitted.length / (200 + 10 * windowS);
}

describe("the ARM pacer against ARM's buckets", () => {
  it("keeps ARM's 429s at or under 1 % of a burst of writes from many concurrent callers, at ≥ 0.95 of the bucket's bound", async () => {
    const { emulator, clock } = newEmulator();
    const pacer = new ArmPacer({ now: () => clock.now() });
    const random = seededRandom(7);
    const done = await runCallers({
      clock,
      arm: clients(emulator, pacer),
      callers: Array.from({ length: 150 }, () => ({ startAt: clock.now(), writes: 6 })),
      // Sagas come back late (timer latency, jitter): up to 5 s.
      lateness: () => Math.floor(random() * 5_000),
    });
    expect(done).toHaveLength(900);
    expect(emulator.inspect.roleAssignments()).toHaveLength(900);
    expect(throttledWrites(emulator)).toBeLessThanOrEqual(9);
    expect(ratioToBound(emulator)).toBeGreaterThanOrEqual(0.95);
    expect(pacer.stats.deferred).toBeGreaterThan(0);
    // Every promise was claimed by the write it was made to.
    expect(pacer.waiting(SUBSCRIPTION_ID, "writes")).toBe(0);
  });

  it("never starves a caller: a small pool arriving behind a large one waits only for older sagas' writes, each write refused a bounded number of times", async () => {
    const { emulator, clock } = newEmulator();
    const pacer = new ArmPacer({ now: () => clock.now() });
    const start = clock.now();
    const large = Array.from({ length: 300 }, () => ({ startAt: start, writes: 3 }));
    const small = Array.from({ length: 5 }, () => ({ startAt: start + 20_000, writes: 3 }));
    const callers = [...large, ...small];
    const done = await runCallers({ clock, arm: clients(emulator, pacer), callers });
    expect(done).toHaveLength(915);
    expect(throttledWrites(emulator)).toBe(0);
    expect(Math.max(...done.map((w) => w.refusals))).toBeLessThanOrEqual(MAX_PACED_REFUSALS);
    // While a write waits, the bucket serves only writes of sagas older than its own (plus a second of slack): nobody
    // younger overtakes it, and what it waits for is bounded by the work older sagas still had.
    const older = (x: Write, w: Write) => callers[x.caller]!.startAt < callers[w.caller]!.startAt || (x.caller <= w.caller && x !== w);
    for (const w of done) {
      const servedMeanwhile = done.filter((x) => older(x, w) && x.doneAt! > w.firstTriedAt! && x.doneAt! <= w.doneAt!).length;
      expect(w.doneAt! - w.firstTriedAt!).toBeLessThanOrEqual((servedMeanwhile / 10) * 1000 + 1_000);
    }
    // The small pool, younger than every large-pool saga, is still through within the large pool's own writes.
    const smallDoneAt = Math.max(...done.filter((w) => w.caller >= 300).map((w) => w.doneAt!));
    expect(smallDoneAt - start).toBeLessThanOrEqual(((915 - 200) / 10) * 1000 + 1_000);
  });

  it("serves older sagas' writes first: each saga's later writes go ahead of younger sagas' first ones, so sagas finish one after another", async () => {
    const { emulator, clock } = newEmulator();
    const pacer = new ArmPacer({ now: () => clock.now() });
    const random = seededRandom(11);
    const start = clock.now();
    // As in a saga: a machine, then two grants that exist only because the machine went through. Same start instant:
    // the rank's tie-break (the instance) orders them.
    const done = await runCallers({
      clock,
      arm: clients(emulator, pacer),
      callers: Array.from({ length: 300 }, () => ({ startAt: start, writes: 3 })),
      scopeOf: (k) => (k === 0 ? `/subscriptions/${SUBSCRIPTION_ID}` : RG_SCOPE),
      lateness: () => Math.floor(random() * 5_000),
    });
    expect(done).toHaveLength(900);
    expect(throttledWrites(emulator)).toBe(0);
    expect(Math.max(...done.map((w) => w.refusals))).toBeLessThanOrEqual(MAX_PACED_REFUSALS);
    expect(ratioToBound(emulator)).toBeGreaterThanOrEqual(0.95);
    // Sagas finish spread over the run, in about their rank order, not together at its end (lockstep): the median
    // saga is through in the first half, and the older half of the sagas finishes before the younger half, give or
    // take the 5 s the callers come back late.
    const finishedAt = Array.from({ length: 300 }, (_, caller) => Math.max(...done.filter((w) => w.caller === caller).map((w) => w.doneAt!)) - start);
    const total = Math.max(...finishedAt);
    const sorted = [...finishedAt].sort((a, b) => a - b);
    expect(sorted[150]!).toBeLessThanOrEqual(total / 2 + 5_000);
    expect(Math.max(...finishedAt.slice(0, 150))).toBeLessThanOrEqual(Math.min(...finishedAt.slice(150)) + 10_000);
  });

  it("fails fast with the 429 the saga honours, carrying the modelled wait in retry-after-ms", async () => {
    const writes = { burst: 2, refillPerSecond: 4 };
    const { emulator, clock } = newEmulator({ throttling: { writes } });
    const pacer = new ArmPacer({ now: () => clock.now(), limits: { writes } });
    const authz = clients(emulator, pacer).authorization(SUBSCRIPTION_ID);
    const create = (n: number) =>
      authz.roleAssignments.create(pathArg(RG_SCOPE), guid(n), { roleDefinitionId: READER, principalId: guid(50 + n), principalType: "ServicePrincipal" });
    await create(1);
    await create(2);
    const paced = (await create(3).catch((e: unknown) => e)) as RestError;
    expect(paced).toMatchObject({ statusCode: 429, code: PACED_CODE });
    const asSaga = ArmThrottledError.from(paced) as ArmThrottledError;
    expect(asSaga.retryAfterMs).toBe(250);
    // The next newcomer queues behind the promise made to the first.
    expect(((await create(4).catch((e: unknown) => e)) as RestError).response?.headers.get("retry-after-ms")).toBe("500");
    expect(emulator.requests.filter({ method: "PUT" })).toHaveLength(2);
    clock.advance(250);
    await create(3);
  });

  it("reserves a write's token before the write is made: a held-back reservation throws the paced 429, a granted one lets the write through once", async () => {
    const writes = { burst: 1, refillPerSecond: 4 };
    const { emulator, clock } = newEmulator({ throttling: { writes } });
    const pacer = new ArmPacer({ now: () => clock.now(), limits: { writes } });
    const arm = clients(emulator, pacer);
    const authz = arm.authorization(SUBSCRIPTION_ID);
    const id = (n: number) => `${RG_SCOPE}/providers/Microsoft.Authorization/roleAssignments/${guid(n)}`;
    const create = (n: number) =>
      authz.roleAssignments.create(pathArg(RG_SCOPE), guid(n), { roleDefinitionId: READER, principalId: guid(50 + n), principalType: "ServicePrincipal" });
    await arm.reserveWrite("PUT", id(1));
    // The token is the reserved write's: another write finds none, and the reservation is not taken twice.
    expect(((await create(2).catch((e: unknown) => e)) as RestError).code).toBe(PACED_CODE);
    await arm.reserveWrite("PUT", id(1));
    await create(1);
    expect(emulator.requests.filter({ method: "PUT" }).map((r) => r.status)).toEqual([201]);
    // Spent with the write: the same write again must wait for a token of its own.
    const again = (await arm.reserveWrite("PUT", id(1)).catch((e: unknown) => e)) as RestError;
    expect(again).toMatchObject({ statusCode: 429, code: PACED_CODE });
    expect((ArmThrottledError.from(again) as ArmThrottledError).paced).toBe(true);
    clock.advance(Number(again.response!.headers.get("retry-after-ms")));
    await arm.reserveWrite("PUT", id(1));
    expect(emulator.requests.filter({ method: "PUT" })).toHaveLength(1);
  });

  it("counts the writes it deferred apart from reads and deletes (what the fleet bench's while-waiting figure reads)", async () => {
    const tiny = { burst: 1, refillPerSecond: 0.001 };
    const pacer = new ArmPacer({ now: () => 0, limits: { reads: tiny, writes: tiny, deletes: tiny } });
    const machine = (n: number) => `${RG_SCOPE}/providers/Microsoft.HybridCompute/machines/m${n}`;
    for (const method of ["GET", "DELETE", "PUT"]) {
      await pacer.reserve(method, `${machine(1)}/${method}`);
      await expect(pacer.reserve(method, `${machine(2)}/${method}`)).rejects.toMatchObject({ code: PACED_CODE });
    }
    // A POST is a write: the PUT spent the writes bucket.
    await expect(pacer.reserve("POST", `${machine(3)}/start`)).rejects.toMatchObject({ code: PACED_CODE });
    expect(pacer.stats).toMatchObject({ deferred: 4, deferredWrites: 2 });
    // Each refused request holds a promise until it comes back for its token.
    expect(pacer.waiting(SUBSCRIPTION_ID, "writes")).toBe(2);
    expect(pacer.waiting(SUBSCRIPTION_ID, "reads")).toBe(1);
  });

  it("corrects its estimate from ARM's remaining-writes header: another instance on the same principal spent most of the bucket", async () => {
    const { emulator, clock } = newEmulator();
    const ours = new ArmPacer({ now: () => clock.now() });
    const theirs = clients(emulator, undefined).authorization(SUBSCRIPTION_ID);
    for (let i = 1; i <= 190; i++) {
      await theirs.roleAssignments.create(pathArg(RG_SCOPE), guid(i), {
        roleDefinitionId: READER,
        principalId: guid(5000 + i),
        principalType: "ServicePrincipal",
      });
    }
    const authz = clients(emulator, ours).authorization(SUBSCRIPTION_ID);
    const results: string[] = [];
    for (let i = 191; i <= 215; i++) {
      const r = await authz.roleAssignments
        .create(pathArg(RG_SCOPE), guid(i), { roleDefinitionId: READER, principalId: guid(5000 + i), principalType: "ServicePrincipal" })
        .then(
          () => "ok",
          (e: RestError) => e.code ?? String(e.statusCode),
        );
      results.push(r);
    }
    // One write to learn the bucket's level from the header, nine more, then the pacer refuses instead of ARM.
    expect(results.filter((r) => r === "ok")).toHaveLength(10);
    expect(new Set(results.slice(10))).toEqual(new Set([PACED_CODE]));
    expect(throttledWrites(emulator)).toBe(0);
  });

  it("reads the subscription-wide header too: other principals spent the global bucket", async () => {
    const { emulator, clock } = newEmulator({ throttling: { globalMultiplier: 1 } });
    const other = clients(emulator, undefined, "00000777-0000-4000-8000-000000000099").authorization(SUBSCRIPTION_ID);
    for (let i = 1; i <= 195; i++) {
      await other.roleAssignments.create(pathArg(RG_SCOPE), guid(i), {
        roleDefinitionId: READER,
        principalId: guid(7000 + i),
        principalType: "ServicePrincipal",
      });
    }
    const pacer = new ArmPacer({ now: () => clock.now(), globalMultiplier: 1 });
    const authz = clients(emulator, pacer).authorization(SUBSCRIPTION_ID);
    let ok = 0;
    for (let i = 196; i <= 220; i++) {
      await authz.roleAssignments
        .create(pathArg(RG_SCOPE), guid(i), { roleDefinitionId: READER, principalId: guid(7000 + i), principalType: "ServicePrincipal" })
        .then(() => ok++)
        .catch(() => undefined);
    }
    expect(ok).toBe(5);
    expect(throttledWrites(emulator)).toBe(0);
  });

  it("parses the remaining-requests header strictly", () => {
    const response = (value: string | undefined): PipelineResponse => ({
      request: createPipelineRequest({ url: "https://management.azure.com/" }),
      status: 200,
      headers: createHttpHeaders(value === undefined ? {} : { "x-ms-ratelimit-remaining-subscription-writes": value }),
    });
    const read = (value: string | undefined) => remainingHeader(response(value), "x-ms-ratelimit-remaining-subscription-writes");
    expect(read("199")).toBe(199);
    expect(read(" 0 ")).toBe(0);
    expect(read(undefined)).toBeUndefined();
    expect(read("-1")).toBeUndefined();
    expect(read("1.5")).toBeUndefined();
    expect(read("many")).toBeUndefined();
  });
});
