import { inject } from "vitest";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Registry } from "../../orchestrations/clients/registry/registry.js";
import { CLUSTER_ID, startWorld, type World } from "./world.js";

let world: World;
beforeEach(async () => {
  world = await startWorld();
});
afterEach(async () => {
  await world.close();
});

const registry = () => new Registry({ connectionString: inject("azuriteConnectionString"), prefix: world.app.prefix });

describe("onboardNode", () => {
  it("takes a node to Ready with exactly the expected Azure and Kubernetes objects, and no bootstrap token left", async () => {
    const { nodeId, agent } = await world.enrol();
    const done = await world.settle(nodeId);
    expect(agent.errors).toEqual([]);
    expect(done).toMatchObject({ runtimeStatus: "Completed", output: { status: "Ready" }, customStatus: { phase: "done" } });

    const node = (await registry().nodes.get(nodeId))!;
    expect(node.status).toBe("Ready");
    const machines = world.arm.inspect.machines();
    expect(machines.map((m) => m.id.split("/").pop())).toEqual([nodeId]);
    expect(machines[0]!.tags).toMatchObject({ "managed-by": "flexnode-onboarding", "flexnode-node": nodeId, "flexnode-pool": "edge" });
    const grants = world.arm.inspect.roleAssignments();
    expect(grants).toHaveLength(2);
    expect(grants.every((g) => g.principalId === machines[0]!.principalId && g.principalType === "ServicePrincipal")).toBe(true);
    expect(node.createdObjects.sort()).toEqual(
      [`mailbox:node-${nodeId}`, `arcMachine:${machines[0]!.id}`, ...grants.map((g) => `roleAssignment:${g.id}`), `kubeNode:${CLUSTER_ID}#${nodeId}`].sort(),
    );

    const kube = world.kube.inspect();
    expect(kube.nodes.map((n) => n.name)).toEqual([nodeId]);
    expect(kube.secrets.filter((s) => s.type === "bootstrap.kubernetes.io/token")).toEqual([]);
    expect(
      kube.clusterRoleBindings
        .map((b) => b.name)
        .filter((n) => n.startsWith("flexnode:"))
        .sort(),
    ).toEqual(["flexnode:edge:auto-approve-node-client-csr", "flexnode:edge:auto-approve-node-client-renewal", "flexnode:edge:node-bootstrapper"]);
    // Long after its bootstrap token is gone, the kubelet can still renew its own certificate.
    expect(world.kube.renewNodeClientCertificate(nodeId)).toEqual({ renewed: true });
    expect(agent.seen.map((s) => s.stepId)).toEqual([
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
    ]);
  });

  it("onboards onto an Entra-only cluster (local accounts disabled) with the service identity's own AKS token", async () => {
    world = await startWorld({ entraOnlyCluster: true });
    const { nodeId } = await world.enrol();
    expect((await world.settle(nodeId)).output).toEqual({ status: "Ready" });
    // The static admin credential was asked for once per cluster access and refused; the user credential (exec) served
    // the server and CA; the Kubernetes writes went through with the Entra token.
    const calls = world.arm.requests.entries.map((r) => `${r.method} ${r.route ?? r.path} ${r.status}`);
    expect(calls.some((c) => /listClusterAdminCredential.* 400$/.test(c))).toBe(true);
    expect(calls.some((c) => /listClusterUserCredential.* 200$/.test(c))).toBe(true);
    const kube = world.kube.inspect();
    expect(kube.nodes.map((n) => n.name)).toEqual([nodeId]);
    expect(
      kube.clusterRoleBindings
        .map((b) => b.name)
        .filter((n) => n.startsWith("flexnode:"))
        .sort(),
    ).toEqual(["flexnode:edge:auto-approve-node-client-csr", "flexnode:edge:auto-approve-node-client-renewal", "flexnode:edge:node-bootstrapper"]);
    expect(kube.secrets.filter((s) => s.type === "bootstrap.kubernetes.io/token")).toEqual([]);
  });

  it("offers the bootstrap kubeconfig again to a fetch step retried after a take whose answer the node never kept", async () => {
    // The agent takes the kubeconfig (the service deletes the offer) and dies before writing it or answering.
    const { nodeId, agent } = await world.enrol({
      script: (e) => (e.stepId === "bootstrap-kubeconfig" && e.attempt === 1 ? "crashAfterEffect" : "succeed"),
    });
    const done = await world.settle(nodeId);
    expect(agent.errors).toEqual([]);
    expect(done.output).toEqual({ status: "Ready" });
    expect(agent.seen.filter((s) => s.stepId === "bootstrap-kubeconfig").map((s) => [s.attempt, s.behaviour])).toEqual([
      [1, "crashAfterEffect"],
      [2, "succeed"],
    ]);
    expect(world.kube.inspect().joins).toHaveLength(1);
    // Nothing is left on offer once the saga is done.
    expect(await registry().secrets.get(nodeId, "bootstrap-kubeconfig")).toBeUndefined();
  });
});
