import { inject } from "vitest";
import { afterEach, describe, expect, it } from "vitest";
import { ArmClients } from "../../orchestrations/clients/arm/arm-clients.js";
import type { WorkflowClient, WorkflowStatus } from "../../orchestrations/clients/workflow-client.js";
import { Registry } from "../../orchestrations/clients/registry/registry.js";
import { buildServices } from "../../functions/composition-root.js";
import { settings } from "../../orchestrations/settings.js";
import { sweep, type SweepOptions } from "../../orchestrations/use-cases/sweep.js";
import { BUILT_IN_ROLES, emulatorCredential } from "../arm-emulator/index.js";
import { admin } from "../function-app/index.js";
import { ARC_RG_ID, CLUSTER_ID, SERVICE_PRINCIPAL, SUBSCRIPTION, startWorld, type World } from "./world.js";
import { pathArg } from "../../orchestrations/clients/arm/resource-id.js";

let world: World;
afterEach(async () => {
  delete process.env.SWEEP_REMOVE_ORPHANS;
  await world.close();
});

const registry = () => new Registry({ connectionString: inject("azuriteConnectionString"), prefix: world.app.prefix });
const OPTIONS: SweepOptions = { sagaDeadlineMs: 30 * 60_000, removeOrphans: false, claimRetentionMs: 7 * 24 * 3_600_000 };

/** The Durable client over the simulator, on its virtual clock (the trigger's real client is exercised below). */
function workflows(w: World): WorkflowClient {
  const sim = w.app.simulator;
  return {
    start: async (name, { instanceId, input }) => void sim.startNew(name, { instanceId, input }),
    status: async (id) => sim.getStatus(id)?.runtimeStatus as WorkflowStatus | undefined,
    terminate: async (id, reason) => void sim.terminate(id, reason),
    describe: async (id) => {
      const s = sim.getStatus(id);
      return s && { status: s.runtimeStatus as WorkflowStatus, createdAt: new Date(s.createdTime), customStatus: s.customStatus };
    },
  };
}

describe("sweeper", () => {
  it("fails a saga stuck beyond its deadline through compensation: agent reset, every object removed, node Failed", async () => {
    // The agent never answers preflight; each attempt may wait 100 x 2 minutes, far beyond the 30-minute deadline.
    world = await startWorld({ timing: { stepTimeoutScale: 100 } });
    const { nodeId, agent } = await world.enrol({ script: (e) => (e.stepId === "preflight" ? "silent" : "succeed") });
    const sim = world.app.simulator;
    await sim.runUntilIdle();
    for (let i = 0; i < 200 && !agent.seen.some((s) => s.stepId === "preflight"); i++) await new Promise((r) => setTimeout(r, 10));
    expect(agent.seen.map((s) => s.stepId)).toEqual(["preflight"]);
    expect(world.arm.inspect.machines()).toHaveLength(1);
    const svc = servicesOf(world);
    const at = () => new Date(world.clock.now());

    // Within the deadline: nothing happens.
    await sim.advance(10 * 60_000);
    expect((await sweep({ ...svc, now: at }, workflows(world), OPTIONS)).sagasFailed).toEqual([]);
    expect(sim.getStatus(nodeId)?.runtimeStatus).toBe("Running");

    await sim.advance(25 * 60_000);
    const report = await sweep({ ...svc, now: at }, workflows(world), OPTIONS);
    expect(report.sagasFailed).toEqual([{ nodeId, reason: "the onboarding saga ran past its 30-minute deadline" }]);
    // A second sweep while compensation runs starts nothing new.
    expect((await sweep({ ...svc, now: at }, workflows(world), OPTIONS)).sagasFailed).toEqual([]);
    const done = await world.settle(`${nodeId}:compensate`);
    expect(sim.getStatus(nodeId)?.runtimeStatus).toBe("Terminated");
    expect(done.output).toMatchObject({ remaining: [] });
    // The agent was asked to reset by the compensation run (its own saga id), and answered it.
    expect(agent.seen.map((s) => [s.stepId, s.sagaId.split("@")[0]])).toEqual([
      ["preflight", nodeId],
      ["reset", `${nodeId}:compensate`],
    ]);
    expect(world.arm.inspect.machines()).toEqual([]);
    expect(world.arm.inspect.roleAssignments()).toEqual([]);
    expect(world.kube.inspect().secrets.filter((s) => s.name.startsWith("bootstrap-token-"))).toEqual([]);
    expect(world.sb.inspect.queues().map((q) => q.name)).not.toContain(nodeId);
    const node = await registry().nodes.get(nodeId);
    expect(node).toMatchObject({ status: "Failed", createdObjects: [], lastError: { code: "SagaDeadlineExceeded" } });
    expect(node?.lastError?.message).toMatch(/^the onboarding saga ran past its 30-minute deadline; removed: /);
    expect((await registry().pools.get("edge"))?.inFlight).toBe(0);
  });

  it("leaves a node waiting for a slot alone, and counts its deadline from when it took the slot", async () => {
    world = await startWorld({ poolSpec: { maxInFlight: 1 }, timing: { stepTimeoutScale: 100 } });
    const silent = (e: { stepId: string }) => (e.stepId === "preflight" ? "silent" : "succeed");
    const a = await world.enrol({ script: silent });
    const b = await world.enrol({ script: silent });
    const sim = world.app.simulator;
    await sim.runUntilIdle();
    const svc = servicesOf(world);
    const at = () => new Date(world.clock.now());

    // Both sagas are 35 minutes old: a is stuck in its node side, b has waited all along.
    await sim.advance(35 * 60_000);
    const sweptAt = world.clock.now();
    const first = await sweep({ ...svc, now: at }, workflows(world), OPTIONS);
    expect(first.sagasFailed.map((f) => f.nodeId)).toEqual([a.nodeId]);
    // a's compensation frees its slot, which goes to b: b's node side starts now.
    await world.settle(`${a.nodeId}:compensate`);
    for (let i = 0; i < 200 && !b.agent.seen.some((s) => s.stepId === "preflight"); i++) await new Promise((r) => setTimeout(r, 10));
    expect(b.agent.seen.map((s) => s.stepId)).toEqual(["preflight"]);
    expect((await sweep({ ...svc, now: at }, workflows(world), OPTIONS)).sagasFailed).toEqual([]);
    // The slot came free when a's compensation took the node, before its removals: b's deadline counts from then.
    const slotSince = Date.parse((await registry().nodes.get(b.nodeId))!.slotSince!);
    expect(slotSince).toBeGreaterThanOrEqual(sweptAt);
    await sim.advance(slotSince + 29 * 60_000 - world.clock.now());
    expect((await sweep({ ...svc, now: at }, workflows(world), OPTIONS)).sagasFailed).toEqual([]);
    await sim.advance(2 * 60_000);
    expect((await sweep({ ...svc, now: at }, workflows(world), OPTIONS)).sagasFailed.map((f) => f.nodeId)).toEqual([b.nodeId]);
  });

  it("marks expired tokens once, and reports (then, when told, removes) managed resources no live node owns", async () => {
    world = await startWorld();
    const { nodeId } = await world.enrol();
    expect((await world.settle(nodeId)).output).toEqual({ status: "Ready" });
    const reg = registry();
    const past = new Date(Date.now() - 60_000).toISOString();
    expect(await reg.nonces.claim({ keyId: "k-test", nonce: "stale", expiresAt: new Date(past) })).toBe(true);
    await reg.tokens.create(
      {
        tokenId: "0123456789abcdef",
        pool: "edge",
        secretHash: "x".repeat(64),
        expiresAt: past,
        maxUses: 1,
        labels: {},
        taints: [],
        approvalRequired: false,
        createdBy: "test",
      },
      "test",
    );

    // Leftovers of an onboarding whose compensation could not finish: a machine and a grant the service made, for a
    // node the registry no longer has as live. And a grant somebody else made at the same scope, which is not ours.
    const own = new ArmClients({ credential: emulatorCredential(SERVICE_PRINCIPAL), httpClient: world.arm.httpClient, retryOptions: { maxRetries: 0 } });
    const strayId = `${ARC_RG_ID}/providers/Microsoft.HybridCompute/machines/fn-0000000000000000000000aa`;
    const stray = await own.resources(SUBSCRIPTION).resources.beginCreateOrUpdateByIdAndWait(
      pathArg(strayId),
      "2025-01-13",
      {
        location: "eastus",
        identity: { type: "SystemAssigned" },
        tags: { "managed-by": "flexnode-onboarding", "flexnode-node": "fn-0000000000000000000000aa" },
        properties: { osType: "linux" },
      },
      { updateIntervalInMs: 1 },
    );
    const grant = `${ARC_RG_ID}/providers/Microsoft.Authorization/roleAssignments/5a1f0000-0000-4000-8000-000000000001`;
    await own.authorization(SUBSCRIPTION).roleAssignments.createById(pathArg(grant), {
      roleDefinitionId: `/subscriptions/${SUBSCRIPTION}/providers/Microsoft.Authorization/roleDefinitions/${BUILT_IN_ROLES.Reader}`,
      principalId: stray.identity!.principalId!,
      principalType: "ServicePrincipal",
    });
    const operator = new ArmClients({
      credential: emulatorCredential("0badc0de-0000-4000-8000-000000000001"),
      httpClient: world.arm.httpClient,
      retryOptions: { maxRetries: 0 },
    });
    const theirs = `${ARC_RG_ID}/providers/Microsoft.Authorization/roleAssignments/5a1f0000-0000-4000-8000-000000000002`;
    await operator.authorization(SUBSCRIPTION).roleAssignments.createById(pathArg(theirs), {
      roleDefinitionId: `/subscriptions/${SUBSCRIPTION}/providers/Microsoft.Authorization/roleDefinitions/${BUILT_IN_ROLES["Azure Kubernetes Service RBAC Reader"]}`,
      principalId: stray.identity!.principalId!,
      principalType: "ServicePrincipal",
    });
    const before = { machines: world.arm.inspect.machines().length, grants: world.arm.inspect.roleAssignments().length };

    const report = await world.app.host.invoke("sweeper", { json: JSON.stringify({ isPastDue: false }) });
    const lines = report.logs.map((l) => l.message);
    expect(lines).toContain("sweep: 1 token(s) expired, 0 stuck saga(s) failed, 2 orphan(s) found, 0 removed, 0 not removed, 1 claim(s) purged");
    expect(lines).toContain(`sweep: orphan arcMachine:${strayId} (Arc machine of no registered node)`);
    expect(lines).toContain(`sweep: orphan roleAssignment:${grant} (role assignment of no registered node)`);
    expect((await reg.tokens.get("0123456789abcdef"))?.expiredAt).toBeDefined();
    // The stale nonce is gone, so the same nonce could be recorded again (its signature time check refuses it anyway).
    expect(await reg.nonces.claim({ keyId: "k-test", nonce: "stale", expiresAt: new Date(past) })).toBe(true);
    // Reporting changes nothing in Azure; the Ready node's own objects are never candidates.
    expect({ machines: world.arm.inspect.machines().length, grants: world.arm.inspect.roleAssignments().length }).toEqual(before);

    process.env.SWEEP_REMOVE_ORPHANS = "true";
    const removal = await world.app.host.invoke("sweeper", { json: JSON.stringify({ isPastDue: false }) });
    expect(removal.logs.map((l) => l.message)).toContain(
      "sweep: 0 token(s) expired, 0 stuck saga(s) failed, 2 orphan(s) found, 2 removed, 0 not removed, 1 claim(s) purged",
    );
    // The sweeper starts the machine's deletion; ARM runs it to the end on its own.
    expect(world.arm.inspect.machines().find((m) => m.id.toLowerCase() === strayId.toLowerCase())?.provisioningState).toBe("Deleting");
    world.arm.completePendingOperations();
    expect(world.arm.inspect.machines().map((m) => m.id.toLowerCase())).not.toContain(strayId.toLowerCase());
    expect(world.arm.inspect.roleAssignments().map((r) => r.id)).toContain(theirs);
    expect(world.arm.inspect.roleAssignments().map((r) => r.id)).not.toContain(grant);
    expect((await reg.nodes.get(nodeId))?.status).toBe("Ready");
    expect(world.arm.inspect.machines()).toHaveLength(1);
    const again = await world.app.host.invoke("sweeper", { json: JSON.stringify({ isPastDue: false }) });
    expect(again.logs.map((l) => l.message)).toContain(
      "sweep: 0 token(s) expired, 0 stuck saga(s) failed, 0 orphan(s) found, 0 removed, 0 not removed, 0 claim(s) purged",
    );
  });

  it("finds, then removes, the Node object and the mailbox queue a failed node left behind, with its Azure objects", async () => {
    world = await startWorld();
    const { nodeId } = await world.enrol();
    expect((await world.settle(nodeId)).output).toEqual({ status: "Ready" });
    const reg = registry();
    // A compensation that never ran to the end: the node is Failed, everything it made is still there.
    await reg.nodes.update((await reg.nodes.get(nodeId))!, () => ({ status: "Failed" }), "test", null);
    expect(world.kube.inspect().nodes.map((n) => [n.name, n.labels["flexnode.dev/node"]])).toEqual([[nodeId, nodeId]]);
    expect(world.sb.inspect.queue(`node-${nodeId}`)).toBeDefined();
    const grants = world.arm.inspect.roleAssignments().length;

    const report = await world.app.host.invoke("sweeper", { json: JSON.stringify({ isPastDue: false }) });
    const lines = report.logs.map((l) => l.message);
    expect(lines).toContain(`sweep: orphan kubeNode:${CLUSTER_ID}#${nodeId} (Node object of node ${nodeId}, which is Failed)`);
    expect(lines).toContain(`sweep: orphan mailbox:node-${nodeId} (mailbox queue of node ${nodeId}, which is Failed)`);
    expect(lines.filter((l) => l.startsWith("sweep: orphan "))).toHaveLength(2 + 1 + grants);

    process.env.SWEEP_REMOVE_ORPHANS = "true";
    const removal = await world.app.host.invoke("sweeper", { json: JSON.stringify({ isPastDue: false }) });
    expect(removal.logs.map((l) => l.message).find((l) => l.startsWith("sweep: 0 token"))).toMatch(/, 0 not removed,/);
    expect(world.kube.inspect().nodes).toEqual([]);
    expect(world.sb.inspect.queue(`node-${nodeId}`)).toBeUndefined();
    expect(world.sb.inspect.queues().map((q) => q.name)).toContain("node-results");
    expect(world.arm.inspect.roleAssignments()).toEqual([]);
  });

  it("resumes the offboarding of a node left Offboarding with none running", async () => {
    world = await startWorld();
    const { nodeId } = await world.enrol();
    expect((await world.settle(nodeId)).output).toEqual({ status: "Ready" });
    // What a lost start leaves (a crash between marking the node and starting its saga).
    const onWorldClock = new Registry({ connectionString: inject("azuriteConnectionString"), prefix: world.app.prefix }, () => new Date(world.clock.now()));
    await onWorldClock.nodes.update({ pool: "edge", nodeId }, () => ({ status: "Offboarding" }), "test", "test.offboarding");
    const svc = servicesOf(world);
    const at = () => new Date(world.clock.now());

    expect((await sweep({ ...svc, now: at }, workflows(world), OPTIONS)).offboardingsResumed).toEqual([]);
    await world.app.simulator.advance(31 * 60_000);
    const report = await sweep({ ...svc, now: at }, workflows(world), OPTIONS);
    expect(report.offboardingsResumed).toEqual([{ nodeId, reason: "the node was Offboarding for over 30 minutes with no offboarding started" }]);
    expect((await sweep({ ...svc, now: at }, workflows(world), OPTIONS)).offboardingsResumed).toEqual([]);
    expect((await world.settle(`${nodeId}:offboard`)).output).toMatchObject({ remaining: [] });
    expect(await registry().nodes.get(nodeId)).toMatchObject({ status: "Offboarded", createdObjects: [] });
    expect(world.arm.inspect.machines()).toEqual([]);
    expect((await registry().pools.get("edge"))?.inFlight).toBe(0);
  });

  it("stops an offboarding run past its deadline, then resumes it", async () => {
    // The agent never answers reset, and the offboarding waits two hours for it: far past the 30-minute deadline.
    world = await startWorld({ timing: { resetWaitMs: 2 * 3_600_000 } });
    const { nodeId } = await world.enrol({ script: (e) => (e.stepId === "reset" ? "silent" : "succeed") });
    expect((await world.settle(nodeId)).output).toEqual({ status: "Ready" });
    const sim = world.app.simulator;
    expect((await world.app.call("POST", `/api/manage/nodes/${nodeId}/decommission`, { headers: admin })).status).toBe(202);
    await sim.runUntilIdle();
    const svc = servicesOf(world);
    const at = () => new Date(world.clock.now());

    await sim.advance(10 * 60_000);
    expect((await sweep({ ...svc, now: at }, workflows(world), OPTIONS)).sagasStopped).toEqual([]);
    await sim.advance(25 * 60_000);
    const report = await sweep({ ...svc, now: at }, workflows(world), OPTIONS);
    expect(report.sagasStopped).toEqual([{ nodeId, instanceId: `${nodeId}:offboard`, reason: `${nodeId}:offboard ran past its 30-minute deadline` }]);
    expect(report.offboardingsResumed).toEqual([]);
    await sim.runUntilIdle();
    expect(sim.getStatus(`${nodeId}:offboard`)?.runtimeStatus).toBe("Terminated");

    const next = await sweep({ ...svc, now: at }, workflows(world), OPTIONS);
    expect(next.offboardingsResumed).toEqual([{ nodeId, reason: expect.stringMatching(/^the node was Offboarding and its offboarding had ended Terminated/) }]);
    expect((await world.settle(`${nodeId}:offboard`)).output).toMatchObject({ remaining: [] });
    expect((await registry().nodes.get(nodeId))?.status).toBe("Offboarded");
  });
});

/** The services the app's functions use, built the same way, on the world's emulators. */
function servicesOf(w: World) {
  return buildServices(settings(), {
    arm: new ArmClients({ credential: emulatorCredential(SERVICE_PRINCIPAL), httpClient: w.arm.httpClient, retryOptions: { maxRetries: 0 } }),
    credential: emulatorCredential(SERVICE_PRINCIPAL),
    mailbox: w.mailbox,
  });
}
