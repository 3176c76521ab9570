import { AzureSASCredential } from "@azure/core-auth";
import { ServiceBusClient } from "@azure/service-bus";
import { inject } from "vitest";
import { afterEach, describe, expect, it } from "vitest";
import { buildStepResult } from "../../contract/step-result.js";
import type { HttpClient } from "@azure/core-rest-pipeline";
import { currentPaceRank, paceRank } from "../../orchestrations/clients/arm/pace-rank.js";
import { ArmPacer } from "../../orchestrations/clients/arm/write-pacer.js";
import { Registry } from "../../orchestrations/clients/registry/registry.js";
import { EventType } from "../durable/index.js";
import { startWorld, type World } from "./world.js";

let world: World;
afterEach(async () => {
  await world.close();
});

const registry = () => new Registry({ connectionString: inject("azuriteConnectionString"), prefix: world.app.prefix });

describe("onboardNode absorbs what Azure and nodes really do", () => {
  it("absorbs ARM 429 storms and a PrincipalNotFound replication delay", async () => {
    world = await startWorld();
    world.arm.faults.inject({ method: "PUT", path: /\/Microsoft\.HybridCompute\/machines\//i, status: 429, retryAfterSeconds: 1, times: 3 });
    world.arm.faults.inject({ method: "PUT", path: /\/roleAssignments\//i, status: 429, retryAfterSeconds: 1, times: 2 });
    world.arm.faults.inject({ method: "PUT", path: /\/roleAssignments\//i, status: 400, code: "PrincipalNotFound", times: 2 });
    const { nodeId } = await world.enrol();
    const done = await world.settle(nodeId);
    expect(done.output).toEqual({ status: "Ready" });
    expect(world.arm.requests.filter({ status: 429 })).toHaveLength(5);
    expect(world.arm.inspect.roleAssignments()).toHaveLength(2);
    expect(world.arm.inspect.machines()).toHaveLength(1);
  });

  it("waits at least what ARM's Retry-After asks, and throttled retries get their own, longer budget", async () => {
    world = await startWorld();
    // More 429s than the 5 attempts other failures get, each asking for 30 s: far above the 1-8 s back-off.
    world.arm.faults.inject({ method: "PUT", path: /\/roleAssignments\//i, status: 429, retryAfterSeconds: 30, times: 7 });
    const { nodeId } = await world.enrol();
    expect((await world.settle(nodeId)).output).toEqual({ status: "Ready" });
    const puts = world.arm.requests.filter({ method: "PUT" }).filter((r) => /roleAssignments/.test(r.path));
    expect(puts.map((r) => r.status)).toEqual([429, 429, 429, 429, 429, 429, 429, 201, 201]);
    const gaps = puts.slice(1, 8).map((r, i) => r.at - puts[i]!.at);
    expect(gaps.every((g) => g >= 30_000)).toBe(true);
  });

  it("honours Retry-After also where the extension drops FailureDetails (older bundles): the activity's payload is in the message", async () => {
    world = await startWorld({ failureDetails: false });
    world.arm.faults.inject({ method: "PUT", path: /\/roleAssignments\//i, status: 429, retryAfterSeconds: 30, times: 7 });
    const { nodeId } = await world.enrol();
    expect((await world.settle(nodeId)).output).toEqual({ status: "Ready" });
    const puts = world.arm.requests.filter({ method: "PUT" }).filter((r) => /roleAssignments/.test(r.path));
    expect(puts.map((r) => r.status)).toEqual([429, 429, 429, 429, 429, 429, 429, 201, 201]);
    expect(puts.slice(1, 8).every((r, i) => r.at - puts[i]!.at >= 30_000)).toBe(true);
  });

  it("sends a write the service's pacer held back exactly when its promised token is due, oldest saga first", async () => {
    // A bucket of 1 that refills every 200 ms: each grant waits for a token, far less than the saga's 0.5-1.5 s back-off.
    const writes = { burst: 1, refillPerSecond: 5 };
    let now = () => 0;
    const pacer = new ArmPacer({ now: () => now(), limits: { writes } });
    // What rank each ARM request was made with, as the pacer sees it (the transport runs in the activity's context).
    const ranks: Array<string | undefined> = [];
    const armTransport = (inner: HttpClient): HttpClient => ({
      sendRequest: (request) => {
        if (request.method === "PUT") ranks.push(currentPaceRank());
        return inner.sendRequest(request);
      },
    });
    world = await startWorld({ armPacer: pacer, armTransport, armThrottling: { writes, globalMultiplier: false } });
    now = () => world.clock.now();
    const { nodeId } = await world.enrol();
    expect((await world.settle(nodeId)).output).toEqual({ status: "Ready" });
    const puts = world.arm.requests.filter({ method: "PUT" });
    expect(puts.map((r) => r.status)).toEqual([200, 201, 201]);
    expect(pacer.stats.deferred).toBeGreaterThanOrEqual(2);
    // Each grant goes out at the instant its token is due (200 ms apart), not after the saga's jittered back-off.
    expect(puts.slice(1).map((r, i) => r.at - puts[i]!.at)).toEqual([200, 200]);
    // Every write was made with the saga's rank: its start (the enrolment) and its instance id.
    const { startedAt } = world.app.simulator.getStatus(nodeId, { showInput: true })!.input as { startedAt: number };
    expect(ranks).toEqual(Array(3).fill(paceRank(startedAt, nodeId)));
  });

  it("spreads retries with jitter that replays identically", async () => {
    world = await startWorld();
    world.arm.faults.inject({ method: "PUT", path: /\/Microsoft\.HybridCompute\/machines\//i, status: 500, times: 3 });
    const { nodeId } = await world.enrol();
    expect((await world.settle(nodeId)).output).toEqual({ status: "Ready" });
    const puts = world.arm.requests.filter({ method: "PUT" }).filter((r) => /machines/.test(r.path));
    const gaps = puts.slice(1).map((r, i) => r.at - puts[i]!.at);
    // Back-off 1, 2, 4 s, each at 50-150 %: not the bare schedule, and within its bounds.
    expect(gaps).toHaveLength(3);
    gaps.forEach((g, i) => {
      expect(g).toBeGreaterThanOrEqual(500 * 2 ** i);
      expect(g).toBeLessThan(1500 * 2 ** i + 100);
    });
    expect(gaps.some((g, i) => Math.abs(g - 1000 * 2 ** i) > 20)).toBe(true);
  });

  it("fails cleanly when a step never answers, after its attempts time out", async () => {
    world = await startWorld();
    const { nodeId, agent } = await world.enrol({ script: (e) => (e.stepId === "sysctl" ? "silent" : "succeed") });
    const started = world.clock.now();
    const done = await world.settle(nodeId);
    expect(done.output).toMatchObject({
      status: "Failed",
      error: { code: "NodeStepTimedOut", message: expect.stringMatching(/step sysctl failed after 3 attempt\(s\): no result within 60000 ms/) },
      remaining: [],
    });
    expect(agent.seen.filter((s) => s.stepId === "sysctl").map((s) => s.attempt)).toEqual([1, 2, 3]);
    // Three timeouts of 60 s each passed in virtual time, not on the wall clock.
    expect(world.clock.now() - started).toBeGreaterThanOrEqual(180_000);
    expect(world.arm.inspect.machines()).toEqual([]);
  });

  it("retries a step whose failure is retryable, and goes on", async () => {
    world = await startWorld();
    const { nodeId, agent } = await world.enrol({ script: (e) => (e.stepId === "container-runtime" && e.attempt === 1 ? "failRetryable" : "succeed") });
    expect((await world.settle(nodeId)).output).toEqual({ status: "Ready" });
    expect(agent.seen.filter((s) => s.stepId === "container-runtime").map((s) => s.attempt)).toEqual([1, 2]);
  });

  it("is unmoved by duplicate results and by a late result of an earlier attempt", async () => {
    world = await startWorld();
    const { nodeId, node, mailbox, agent } = await world.enrol({
      script: (e) => (e.stepId === "kernel-modules" && e.attempt === 1 ? "silent" : "duplicate"),
    });
    const done = await world.settle(nodeId);
    expect(done.output).toEqual({ status: "Ready" });
    const raised = world.app.simulator
      .history(nodeId)
      .filter((e) => e.EventType === EventType.EventRaised)
      .map((e) => String(e.Name));
    expect(new Set(raised).size).toBe(raised.length);

    // Attempt 1 of kernel-modules answers now, long after attempt 2 succeeded and the node is Ready.
    const at = new Date();
    const sagaId = agent.seen.find((s) => s.stepId === "kernel-modules")!.sagaId;
    expect(sagaId).toMatch(new RegExp(`^${nodeId}@[0-9a-f]{12}$`));
    const late = buildStepResult(
      {
        nodeId,
        sagaId,
        stepId: "kernel-modules",
        attempt: 1,
        outcome: "failed",
        error: { code: "Late", message: "late", retryable: false },
        startedAt: at,
        finishedAt: at,
        manifestDigest: `sha256:${"1".repeat(64)}`,
      },
      { privateKey: node.privateKey },
    );
    const client = new ServiceBusClient(mailbox.namespace, new AzureSASCredential(mailbox.sendSas));
    await client.createSender(mailbox.resultsQueue).sendMessages({ body: late, messageId: "late-1" });
    await client.close();
    const deadline = Date.now() + 5000;
    while (!world.triggers.invocations.some((i) => i.messageId === "late-1") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await world.app.simulator.runUntilIdle();
    expect((await registry().nodes.get(nodeId))?.status).toBe("Ready");
    expect(world.app.simulator.getStatus(nodeId)?.output).toEqual({ status: "Ready" });
  });

  it("creates no duplicate when an activity is executed again after its side effect (a crash and replay)", async () => {
    world = await startWorld();
    const { nodeId } = await world.enrol({ script: () => "silent" });
    // Run the saga up to the node steps; by then every Azure-side activity has run once.
    for (let i = 0; i < 100; i++) {
      await world.app.simulator.runUntilIdle();
      if ((world.app.simulator.getStatus(nodeId)?.customStatus as { phase?: string } | null)?.phase === "runNodeSteps") break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const history = world.app.simulator.history(nodeId);
    const inputOf = (name: string) => {
      const scheduled = history.find((e) => e.EventType === EventType.TaskScheduled && e.Name === name)!;
      return { string: String(scheduled.Input) };
    };
    const before = {
      machines: world.arm.inspect.machines(),
      grants: world.arm.inspect.roleAssignments(),
      secrets: world.kube.inspect().secrets.filter((s) => s.name.startsWith("bootstrap-token-")),
    };
    expect(before.machines).toHaveLength(1);
    expect(before.grants).toHaveLength(2);
    expect(before.secrets).toHaveLength(1);
    // The durable runtime re-runs an activity whose completion it never recorded: same input, same names.
    for (const name of ["onboard_openMailbox", "onboard_putArcMachine", "onboard_grantRole", "onboard_issueBootstrapToken"]) {
      await world.app.host.invoke(name, inputOf(name));
    }
    expect(world.arm.inspect.machines()).toEqual(before.machines);
    expect(world.arm.inspect.roleAssignments().map((g) => g.id)).toEqual(before.grants.map((g) => g.id));
    expect(
      world.kube
        .inspect()
        .secrets.filter((s) => s.name.startsWith("bootstrap-token-"))
        .map((s) => s.name),
    ).toEqual(before.secrets.map((s) => s.name));
    expect(world.sb.inspect.queues().filter((q) => q.name === `node-${nodeId}`)).toHaveLength(1);
  });
});
