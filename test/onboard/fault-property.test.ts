/**
 * Randomised fault injection: each run is a random schedule of faults across the saga's steps (ARM 429/500 and
 * PrincipalNotFound, Kubernetes API and Service Bus management failures, and per-step agent behaviour: fail,
 * retryable failure, silence, duplicates). Whatever the schedule, every saga must end Ready or Failed with no
 * orphaned object in any emulator and a registry that agrees with them. FAULT_SEEDS sets the number of runs
 * (default 200; run 1,000+ locally); a failure prints fast-check's seed and counterexample to replay it.
 */
import fc from "fast-check";
import { inject } from "vitest";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Registry } from "../../orchestrations/clients/registry/registry.js";
import type { StepBehaviour } from "./agent-responder.js";
import { startWorld, type World } from "./world.js";

const RUNS = Number(process.env.FAULT_SEEDS ?? 200);
const STEPS = [
  "preflight",
  "kernel-modules",
  "sysctl",
  "container-runtime",
  "kubernetes-binaries",
  "cni-plugins",
  "kubelet-config",
  "bootstrap-kubeconfig",
  "start-kubelet",
  "kubelet-client-certificate",
];

// Fault counts around the retry budget (5 attempts): most runs must retry and still succeed; combined faults on one
// path, or a count of 5, exhaust it and exercise compensation.
const schedule = fc.record({
  machinePut429: fc.nat(2),
  machinePut500: fc.nat(3),
  grant429: fc.nat(2),
  principalNotFound: fc.nat(3),
  clusterRead500: fc.nat(5),
  kubeSecret500: fc.nat(4),
  kubeDelete500: fc.nat(2),
  queuePut503: fc.nat(5),
  // Mostly success, so runs also get deep into the node steps.
  behaviours: fc.array(
    fc.oneof(
      { weight: 30, arbitrary: fc.constant<StepBehaviour>("succeed") },
      { weight: 3, arbitrary: fc.constant<StepBehaviour>("duplicate") },
      { weight: 3, arbitrary: fc.constant<StepBehaviour>("failRetryable") },
      { weight: 2, arbitrary: fc.constant<StepBehaviour>("silent") },
      { weight: 1, arbitrary: fc.constant<StepBehaviour>("fail") },
    ),
    { minLength: STEPS.length, maxLength: STEPS.length },
  ),
  immutable: fc.boolean(),
});

let world: World;
beforeAll(async () => {
  world = await startWorld();
});
afterAll(async () => {
  await world.close();
});

describe("onboardNode under random fault schedules", () => {
  it(`ends Ready or Failed with no orphans and a consistent registry (${RUNS} runs)`, { timeout: 30 * 60_000 }, async () => {
    const registry = new Registry({ connectionString: inject("azuriteConnectionString"), prefix: world.app.prefix });
    const outcomes = { Ready: 0, Failed: 0 };
    await fc.assert(
      fc.asyncProperty(schedule, async (s) => {
        world.arm.faults.clear();
        world.kube.faults.clear();
        world.sb.adminFaults.clear();
        const inj = <T>(n: number, f: () => T) => void (n > 0 && f());
        inj(s.machinePut429, () =>
          world.arm.faults.inject({ method: "PUT", path: /\/HybridCompute\/machines\//i, status: 429, retryAfterSeconds: 1, times: s.machinePut429 }),
        );
        inj(s.machinePut500, () => world.arm.faults.inject({ method: "PUT", path: /\/HybridCompute\/machines\//i, status: 500, times: s.machinePut500 }));
        inj(s.grant429, () => world.arm.faults.inject({ method: "PUT", path: /\/roleAssignments\//i, status: 429, retryAfterSeconds: 1, times: s.grant429 }));
        inj(s.principalNotFound, () =>
          world.arm.faults.inject({ method: "PUT", path: /\/roleAssignments\//i, status: 400, code: "PrincipalNotFound", times: s.principalNotFound }),
        );
        inj(s.clusterRead500, () => world.arm.faults.inject({ method: "GET", path: /\/managedClusters\/aks-1$/i, status: 500, times: s.clusterRead500 }));
        inj(s.kubeSecret500, () => world.kube.faults.inject({ method: "POST", path: /\/secrets$/, status: 500, times: s.kubeSecret500 }));
        inj(s.kubeDelete500, () => world.kube.faults.inject({ method: "DELETE", path: /\/secrets\//, status: 500, times: s.kubeDelete500 }));
        inj(s.queuePut503, () => world.sb.adminFaults.inject({ method: "PUT", path: /^\/?node-fn-/, status: 503, times: s.queuePut503 }));
        const behaviourOf = (stepId: string, attempt: number) => (attempt === 1 ? (s.behaviours[STEPS.indexOf(stepId)] ?? "succeed") : "succeed");

        const { nodeId, agent } = await world.enrol({ immutable: s.immutable, script: (e) => behaviourOf(e.stepId, e.attempt) });
        const done = await world.settle(nodeId);
        await world.retire(nodeId);
        const output = done.output as { status: "Ready" | "Failed"; remaining?: string[] };

        // Every saga ends, Ready or Failed, and says so in the registry too.
        expect(done.runtimeStatus).toBe("Completed");
        expect(["Ready", "Failed"]).toContain(output.status);
        outcomes[output.status]++;
        const node = (await registry.nodes.get(nodeId))!;
        expect(node.status).toBe(output.status);
        expect(agent.errors).toEqual([]);

        // No orphans: what exists in the emulators is exactly what Ready nodes own.
        const ready = (await registry.nodes.list({ pool: "edge", status: "Ready", maxPageSize: 1000 })).items;
        const readyIds = new Set(ready.map((n) => n.nodeId));
        const machines = world.arm.inspect.machines();
        expect(new Set(machines.map((m) => m.id.split("/").pop()))).toEqual(readyIds);
        const principals = new Set(machines.map((m) => m.principalId));
        expect(world.arm.inspect.roleAssignments().every((g) => principals.has(g.principalId))).toBe(true);
        expect(world.arm.inspect.roleAssignments()).toHaveLength(2 * readyIds.size);
        const kube = world.kube.inspect();
        expect(kube.secrets.filter((x) => x.name.startsWith("bootstrap-token-"))).toEqual([]);
        expect(new Set(kube.nodes.map((n) => n.name))).toEqual(readyIds);
        expect(
          new Set(
            world.sb.inspect
              .queues()
              .map((q) => q.name)
              .filter((n) => n.startsWith("node-fn-")),
          ),
        ).toEqual(new Set([...readyIds].map((id) => `node-${id}`)));

        // The registry's record matches: a Ready node lists what it owns, a Failed one nothing.
        if (output.status === "Failed") {
          expect(output.remaining).toEqual([]);
          expect(node.createdObjects).toEqual([]);
        } else {
          expect(node.createdObjects.filter((r) => r.startsWith("arcMachine:"))).toHaveLength(1);
          expect(node.createdObjects.filter((r) => r.startsWith("roleAssignment:"))).toHaveLength(2);
          expect(node.createdObjects.some((r) => r.startsWith("bootstrapToken:") || r.startsWith("oneTimeSecret:"))).toBe(false);
        }
      }),
      { numRuns: RUNS, endOnFailure: true, verbose: 1 },
    );
    // The figures for the closing note (not assertions).
    console.warn(`[measure] fault property: ${RUNS} runs, Ready ${outcomes.Ready}, Failed ${outcomes.Failed}`);
    expect(outcomes.Ready + outcomes.Failed).toBe(RUNS);
  });
});
