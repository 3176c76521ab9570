import { inject } from "vitest";
import { afterEach, describe, expect, it } from "vitest";
import { Registry } from "../../orchestrations/clients/registry/registry.js";
import type { StepBehaviour } from "./agent-responder.js";
import { startWorld, type World } from "./world.js";

let world: World;
afterEach(async () => {
  await world.close();
});

const NODE_STEPS = [
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

interface FailureCase {
  name: string;
  /** Arms the failure before the saga runs. */
  inject?: (w: World) => void;
  script?: (stepId: string) => StepBehaviour;
  code: string;
  message: RegExp;
}

const forever = 10_000;
const CASES: FailureCase[] = [
  {
    name: "openMailbox",
    inject: (w) => void w.sb.adminFaults.inject({ method: "PUT", path: /^\/?node-fn-/, status: 503, times: forever }),
    code: "openMailboxFailed",
    message: /^openMailbox: /,
  },
  {
    name: "ensureArcMachine",
    inject: (w) => void w.arm.faults.inject({ method: "PUT", path: /\/Microsoft\.HybridCompute\/machines\//i, status: 500, times: forever }),
    code: "ensureArcMachineFailed",
    message: /^ensureArcMachine: /,
  },
  {
    name: "grantAccess",
    inject: (w) => void w.arm.faults.inject({ method: "PUT", path: /\/roleAssignments\//i, status: 500, times: forever }),
    code: "grantAccessFailed",
    message: /^grantAccess: /,
  },
  {
    name: "issueKubeletCredential (cluster read)",
    inject: (w) => void w.arm.faults.inject({ method: "GET", path: /\/managedClusters\/aks-1$/i, status: 500, times: forever }),
    code: "issueKubeletCredentialFailed",
    message: /^issueKubeletCredential: /,
  },
  {
    name: "issueKubeletCredential (pool RBAC)",
    inject: (w) => void w.kube.faults.inject({ path: /clusterrolebindings/, status: 500, times: forever }),
    code: "issueKubeletCredentialFailed",
    message: /^issueKubeletCredential: /,
  },
  {
    name: "issueKubeletCredential (token Secret)",
    inject: (w) => void w.kube.faults.inject({ method: "POST", path: /\/secrets$/, status: 500, times: forever }),
    code: "issueKubeletCredentialFailed",
    message: /^issueKubeletCredential: /,
  },
  ...NODE_STEPS.map((stepId): FailureCase => ({
    name: `node step ${stepId}`,
    script: (s) => (s === stepId ? "fail" : "succeed"),
    code: "NodeStepFailed",
    message: new RegExp(`^runNodeSteps \\(${stepId}\\): step ${stepId} failed after 1 attempt\\(s\\): ScriptedFailure`),
  })),
  {
    name: "verifyReady",
    script: (s) => (s === "kubelet-client-certificate" ? "succeedWithoutEffect" : "succeed"),
    code: "NodeNotReady",
    message: /^verifyReady: the Node object is not Ready/,
  },
  // Fails every attempt of the finalize delete, then lets compensation's delete through.
  {
    name: "finalize",
    inject: (w) => void w.kube.faults.inject({ method: "DELETE", path: /\/secrets\/bootstrap-token-/, status: 500, times: 5 }),
    code: "finalizeFailed",
    message: /^finalize: /,
  },
];

describe("onboardNode: a failure at any step leaves nothing behind", () => {
  it.each(CASES)("fails cleanly at $name", async (c) => {
    world = await startWorld();
    c.inject?.(world);
    const { nodeId, agent } = await world.enrol({ script: c.script ? (e) => c.script!(e.stepId) : undefined });
    const done = await world.settle(nodeId);

    expect(done.runtimeStatus).toBe("Completed");
    expect(done.output).toMatchObject({ status: "Failed", error: { code: c.code }, remaining: [] });
    const node = (await new Registry({ connectionString: inject("azuriteConnectionString"), prefix: world.app.prefix }).nodes.get(nodeId))!;
    expect(node.status).toBe("Failed");
    expect(node.lastError?.code).toBe(c.code);
    expect(node.lastError?.message).toMatch(c.message);
    expect(node.createdObjects).toEqual([]);

    expect(world.arm.inspect.machines()).toEqual([]);
    expect(world.arm.inspect.roleAssignments()).toEqual([]);
    const kube = world.kube.inspect();
    expect(kube.secrets.filter((s) => s.namespace === "kube-system" && s.name.startsWith("bootstrap-token-"))).toEqual([]);
    expect(kube.nodes).toEqual([]);
    expect(
      world.sb.inspect
        .queues()
        .map((q) => q.name)
        .filter((n) => n.startsWith("node-fn-")),
    ).toEqual([]);
    // When the agent had a mailbox, it was told to reset before the mailbox went away.
    if (c.script) expect(agent.seen.at(-1)?.stepId).toBe("reset");
    expect(agent.errors).toEqual([]);
  });
});

describe("a failed node enrolling again", () => {
  it("runs a second saga under the same instance id to Ready: the first run's results never answer the second's steps", async () => {
    world = await startWorld();
    const { nodeId, node } = await world.enrol({ script: (e) => (e.stepId === "sysctl" ? "fail" : "succeed") });
    const first = await world.settle(nodeId);
    expect(first.output).toMatchObject({ status: "Failed", error: { code: "NodeStepFailed" } });
    await world.retire(nodeId);

    // Same machine, same key, a fresh token: the service restarts the node's saga under its node id.
    const agent = await world.reenrol(nodeId, node);
    try {
      const second = await world.settle(nodeId);
      expect(second.output).toEqual({ status: "Ready" });
      // preflight attempt 1 was answered in both runs; each run waited for, and got, its own answer.
      const runs = new Set(agent.seen.map((s) => s.sagaId));
      expect(runs.size).toBe(1);
      const secondRun = [...runs][0]!;
      expect(secondRun.startsWith(`${nodeId}@`)).toBe(true);
      // Every step went through at its first attempt: no result of the first run was mistaken for (or swallowed as a
      // duplicate of) the second run's, which would have cost a step timeout and a retry.
      expect({ errors: agent.errors.map(String), late: agent.seen.filter((s) => s.attempt !== 1) }).toEqual({ errors: [], late: [] });
      const registry = new Registry({ connectionString: inject("azuriteConnectionString"), prefix: world.app.prefix });
      expect((await registry.nodes.get(nodeId))?.status).toBe("Ready");
    } finally {
      await agent.close();
    }
  });
});
