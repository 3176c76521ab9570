/**
 * One fleet run: `nodes` machines enrol at the same emulated instant into a pool of `maxInFlight` slots, and the run
 * goes on in virtual time until every saga has ended. Every enrolment is admitted: sagas beyond the slots prepare the
 * Azure side and wait for a slot before the node side (orchestrations/clients/registry/in-flight.ts).
 * Returns the run's figures; the ARM figures come from the ARM emulator's request log, orphans from the emulators.
 * With `pacing` the service's ARM clients carry the ARM pacer of production (orchestrations/clients/arm/write-pacer.ts)
 * on the run's virtual clock, sleeping no wait in-process (an in-process sleep here would be a timer the virtual-time
 * loop cannot see; in emulated time a durable timer of the same length has the same effect on the buckets).
 */
import { performance } from "node:perf_hooks";
import { Registry } from "../../orchestrations/clients/registry/registry.js";
import { ARM_DEFAULT_LIMITS } from "../../test/arm-emulator/index.js";
import { ArmTraffic } from "./arm-traffic.js";
import { registryScope, type BenchTables } from "./bench-tables.js";
import { HttpCensus, hostPortOf } from "./http-census.js";
import { LATENCY_MODEL, nodeStepMs } from "./latency-model.js";
import { MinHeap } from "./min-heap.js";
import { POOL, SERVICE_PRINCIPAL, SUBSCRIPTION, startOnboardingWorld, type BenchNode } from "./onboarding-world.js";
import { countOrphans, readyNodeIds } from "./orphans.js";
import { countBy, percentile, round } from "./stats.js";
import { runInVirtualTime } from "./virtual-time.js";

/** A token may be used at most 10,000 times (CreateToken's limit): bigger fleets get several. */
const MAX_TOKEN_USES = 10_000;
const TERMINAL = new Set(["Completed", "Failed", "Terminated"]);

interface Arrival {
  node: BenchNode;
  token: string;
}

interface Outcome {
  nodeId: string;
  status: string;
  code?: string;
  /** From the enrolment to the saga's end. */
  sagaMs: number;
  /** From the saga's first look for a slot to the look that found one (0: a slot at once). */
  waitedForSlotMs: number;
  /** From the run's start: when the node side began (a slot found), and when the saga ended. */
  nodeSideFromStartMs: number;
  endedFromStartMs: number;
}

/** When a saga first looked for a slot, and when a look found one (from the activity log, before it is cleared). */
interface SlotLooks {
  firstAt: number;
  heldAt?: number;
}

export interface FleetRunOptions {
  tables: BenchTables;
  nodes: number;
  maxInFlight: number;
  /** The service paces its ARM requests (production); false: the clients send everything and ARM throttles. */
  pacing: boolean;
  /** Role grants per node (0–2). */
  roleGrants: number;
}

export async function runFleet(o: FleetRunOptions): Promise<Record<string, unknown>> {
  const wallStart = performance.now();
  const census = new HttpCensus();
  const registryRequestsBefore = o.tables.requests();
  const enrolRegistryRequestsBefore = o.tables.requestsIn();
  const world = await startOnboardingWorld({
    azuriteConnectionString: o.tables.connectionString,
    ...(o.tables.httpClient ? { tablesHttpClient: o.tables.httpClient } : {}),
    maxInFlight: o.maxInFlight,
    stepDurationMs: (envelope) => nodeStepMs(LATENCY_MODEL, envelope.stepId),
    kubeletReadyAfterMs: LATENCY_MODEL.kubeletReadyAfterMs,
    pacing: o.pacing,
    roleGrants: o.roleGrants,
  });
  try {
    const { app, clock, arm, pacer } = world;
    const traffic = new ArmTraffic(arm);
    const start = clock.now();

    const tokens: string[] = [];
    for (let left = o.nodes; left > 0; left -= MAX_TOKEN_USES) tokens.push(await world.createToken(Math.min(left, MAX_TOKEN_USES)));
    const arriving = new MinHeap<Arrival>();
    for (let i = 0; i < o.nodes; i++) arriving.push(start, { node: world.newNode(), token: tokens[Math.floor(i / MAX_TOKEN_USES)]! });

    const admitted = new Map<string, { at: number }>();
    const looks = new Map<string, SlotLooks>();
    const outcomes: Outcome[] = [];
    const enrol = { calls: 0, created: 0 };

    app.simulator.onChange((id) => {
      const a = admitted.get(id);
      if (!a) return;
      const status = app.simulator.getStatus(id, { showInput: false });
      if (!status || !TERMINAL.has(status.runtimeStatus)) return;
      admitted.delete(id);
      const output = status.output as { status?: string; error?: { code: string } } | string | null;
      const result = typeof output === "object" && output !== null ? output : undefined;
      // The last looks of this saga may still be in the activity log: read them before it is folded.
      noteLooks(app.simulator.activityLog, looks, (nodeId) => nodeId === id);
      const look = looks.get(id);
      looks.delete(id);
      const nodeSideAt = look?.heldAt ?? clock.now();
      outcomes.push({
        nodeId: id,
        status: result?.status ?? status.runtimeStatus,
        ...(result?.error ? { code: result.error.code } : {}),
        sagaMs: clock.now() - a.at,
        waitedForSlotMs: look ? nodeSideAt - look.firstAt : 0,
        nodeSideFromStartMs: nodeSideAt - start,
        endedFromStartMs: clock.now() - start,
      });
      world.agents.retire(id);
    });

    const arrivals = {
      nextDueAt: () => arriving.peekKey(),
      runDue: async () => {
        const due = arriving.popUntil(clock.now());
        for (const w of due) {
          enrol.calls++;
          // In the registry scope: what the enrolment function asks of the registry is enrolment's, not the saga's.
          const answer = await registryScope.run(true, () => world.enrol(w.node, w.token));
          if (answer.kind !== "created") throw new Error(`enrolment refused with ${answer.status}: ${answer.body}`);
          enrol.created++;
          admitted.set(answer.nodeId, { at: clock.now() });
        }
        return due.length;
      },
    };
    const agents = { nextDueAt: () => world.agents.nextDueAt(), runDue: () => world.agents.deliverDue() };

    let activities = 0;
    let purged = 0;
    // Where the bucket's bound went unused: ARM's write bucket loses refill only while it is full. Lost while writes
    // waited in the pacer, it is capacity pacing wasted; lost while none waited, demand did not ask for it.
    // Each pass's loss is the refill lost in the gap before it, kept with the pass's instant to count the write window's.
    const lost = { passes: [] as { at: number; tokens: number; waiting: boolean }[], last: 0, waiting: false };
    const passes = await runInVirtualTime({
      simulator: app.simulator,
      clock,
      sources: [agents, arrivals],
      done: () => outcomes.length === o.nodes,
      afterPass: () => {
        traffic.fold();
        const discarded = arm.throttleBucket(SERVICE_PRINCIPAL, SUBSCRIPTION, "writes")?.discarded(clock.now()) ?? 0;
        if (discarded > lost.last) lost.passes.push({ at: clock.now(), tokens: discarded - lost.last, waiting: lost.waiting });
        lost.last = discarded;
        lost.waiting = (pacer?.waiting(SUBSCRIPTION, "writes") ?? 0) > 0;
        world.kube.requests.clear();
        noteLooks(app.simulator.activityLog, looks, (id) => admitted.has(id));
        activities += app.simulator.activityLog.length;
        app.simulator.activityLog.length = 0;
        // A finished instance is needed only for its outcome, recorded above (production purges history too).
        for (; purged < outcomes.length; purged++) app.simulator.purge(outcomes[purged]!.nodeId);
      },
    });
    const emulatedMs = clock.now() - start;
    if (world.agents.errors.length > 0) throw new Error(`agents failed: ${String(world.agents.errors[0])}`);

    const ready = await readyNodeIds(
      new Registry({ connectionString: o.tables.connectionString, prefix: app.prefix, ...(o.tables.httpClient ? { httpClient: o.tables.httpClient } : {}) }),
      POOL,
    );
    const readyOutcomes = outcomes.filter((x) => x.status === "Ready");
    const writes = traffic.admitted.writes;
    const limit = ARM_DEFAULT_LIMITS.writes;
    const windowS =
      traffic.firstWriteAt !== undefined && traffic.lastWriteAt !== undefined ? Math.max(1_000, traffic.lastWriteAt - traffic.firstWriteAt) / 1000 : 0;
    const achieved = windowS > 0 ? writes / windowS : 0;
    // The most a token bucket admits on average over the window: the whole burst plus refill for the whole window.
    const bound = windowS > 0 ? (limit.burst + limit.refillPerSecond * windowS) / windowS : 0;
    // Writes happen at pass instants, so a gap lies inside the window when its end does (after the first write).
    const lostInWindow = (waiting: boolean) =>
      lost.passes
        .filter((p) => p.waiting === waiting && p.at > (traffic.firstWriteAt ?? Infinity) && p.at <= (traffic.lastWriteAt ?? -Infinity))
        .reduce((sum, p) => sum + p.tokens, 0);
    const sagaMs = outcomes.map((x) => x.sagaMs);
    const waitMs = outcomes.map((x) => x.waitedForSlotMs);
    const wallMs = performance.now() - wallStart;
    const perSaga = (n: number) => round(n / o.nodes, 1);
    const writesSent = writes + traffic.throttled.writes;
    const registryRequests = o.tables.requests() - registryRequestsBefore;
    const enrolRegistryRequests = o.tables.requestsIn() - enrolRegistryRequestsBefore;

    return {
      nodes: o.nodes,
      maxInFlight: o.maxInFlight,
      sagasReady: readyOutcomes.length,
      sagasFailed: outcomes.length - readyOutcomes.length,
      failureCodes: countBy(
        outcomes.filter((x) => x.status !== "Ready"),
        (x) => x.code ?? x.status,
      ),
      registryReadyNodes: ready.size,
      armWritesPerSec: round(achieved),
      armWriteLimitPerSec: limit.refillPerSecond,
      armWriteBurst: limit.burst,
      armWritesToLimitRatio: round(achieved / limit.refillPerSecond, 3),
      armWriteBoundPerSec: round(bound),
      armWritesToBoundRatio: bound > 0 ? round(achieved / bound, 3) : 0,
      armWriteWindowSec: round(windowS, 1),
      armPeakWritesInOneSec: traffic.peakWritesInOneSecond(),
      armWritesPer10s: traffic.timeline(10),
      armWrites: writes,
      armWritesThrottled: traffic.throttled.writes,
      armWritesThrottledPercent: writesSent > 0 ? round((100 * traffic.throttled.writes) / writesSent, 2) : 0,
      // The bound's unused share, by why (see `lost`): what pacing wasted, and what demand left. Without the pacer,
      // nothing says which writes wait (throttled sagas sit on durable timers): not split.
      armWriteBoundLostWhileWaiting: pacer && bound > 0 ? round(lostInWindow(true) / (bound * windowS), 3) : null,
      armWriteBoundLostWhileIdle: pacer && bound > 0 ? round(lostInWindow(false) / (bound * windowS), 3) : null,
      pacing: o.pacing,
      roleGrantsPerNode: o.roleGrants,
      pacer: pacer ? { ...pacer.stats } : null,
      armDeletes: traffic.admitted.deletes,
      armDeletesThrottled: traffic.throttled.deletes,
      armReads: traffic.admitted.reads,
      armReadsThrottled: traffic.throttled.reads,
      armWritesPerReadyNode: readyOutcomes.length > 0 ? round(writes / readyOutcomes.length, 2) : null,
      armRequestsByRoute: traffic.routes(),
      roleAssignmentsCreated: traffic.byRoute.get("roleAssignments.put")?.admitted ?? 0,
      roleAssignmentsRemaining: arm.inspect.roleAssignments().length,
      orphans: countOrphans(ready, world),
      enrolCalls: enrol.calls,
      enrolCreated: enrol.created,
      emulatedSecToOnboardFleet: round(emulatedMs / 1000, 1),
      nodesReadyPerEmulatedHour: emulatedMs > 0 ? round((readyOutcomes.length / emulatedMs) * 3_600_000, 1) : 0,
      sagaEmulatedSecP50: round((percentile(sagaMs, 50) ?? 0) / 1000, 1),
      sagaEmulatedSecP99: round((percentile(sagaMs, 99) ?? 0) / 1000, 1),
      waitForSlotEmulatedSecP50: round((percentile(waitMs, 50) ?? 0) / 1000, 1),
      waitForSlotEmulatedSecMax: round((percentile(waitMs, 100) ?? 0) / 1000, 1),
      nodeSideBegunPer10s: per10s(outcomes.map((x) => x.nodeSideFromStartMs)),
      endedPer10s: per10s(outcomes.map((x) => x.endedFromStartMs)),
      activitiesPerSaga: perSaga(activities),
      // The saga's (its activities and the node-results function) apart from enrolment's, which issue 16 counts on
      // its own (≤ 6 per first-time enrolment). A saga that waits for a slot adds its looks (two requests each).
      registryRequestsPerSaga: perSaga(registryRequests - enrolRegistryRequests),
      registryRequestsPerEnrolCall: enrol.calls > 0 ? round(enrolRegistryRequests / enrol.calls, 2) : 0,
      registryRequestsPerNode: perSaga(registryRequests),
      registryTables: o.tables.kind,
      durableClientRequestsPerSaga: perSaga(census.count(hostPortOf(app.clientServer.origin))),
      kubeRequestsPerSaga: perSaga(census.count(hostPortOf(world.kubeUrl))),
      virtualTimePasses: passes,
      wallSec: round(wallMs / 1000, 1),
      wallMsPerSaga: round(wallMs / o.nodes, 1),
    };
  } finally {
    census.close();
    await world.close();
  }
}

/** Records each saga's first look for a slot and the look that found one (activity calls of `onboard_takeSlot`). */
function noteLooks(
  log: readonly { instanceId: string; name: string; startedAt: number; finishedAt: number; result?: unknown }[],
  into: Map<string, SlotLooks>,
  live: (instanceId: string) => boolean,
): void {
  for (const call of log) {
    if (call.name !== "onboard_takeSlot" || !live(call.instanceId)) continue;
    let look = into.get(call.instanceId);
    if (!look) into.set(call.instanceId, (look = { firstAt: call.startedAt }));
    if (call.result === true && look.heldAt === undefined) look.heldAt = call.finishedAt;
  }
}

/** How many of `msFromStart` fall in each 10 s of emulated time from the run's start ("400 0 0 … 37"). */
function per10s(msFromStart: number[]): string {
  const counts: number[] = [];
  for (const ms of msFromStart) {
    const k = Math.floor(ms / 10_000);
    while (counts.length <= k) counts.push(0);
    counts[k]!++;
  }
  return counts.join(" ");
}
