/** The cluster's network as the service reads it from ARM: its DNS service IP reaches the kubelet, its plugin gates pools. */
import { afterEach, describe, expect, it } from "vitest";
import { admin } from "../function-app/index.js";
import { ARC_RG_ID, CLUSTER_RG, SUBSCRIPTION, startWorld, type World } from "./world.js";

let world: World | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});

const clusterId = (name: string) => `/subscriptions/${SUBSCRIPTION}/resourceGroups/${CLUSTER_RG}/providers/Microsoft.ContainerService/managedClusters/${name}`;

describe("the cluster's network", () => {
  it("gives the kubelet the cluster's own DNS service IP, not AKS's default", async () => {
    world = await startWorld({ clusterNetwork: { serviceCidr: "10.2.0.0/16", dnsServiceIP: "10.2.0.10" } });
    const { nodeId, agent } = await world.enrol({ immutable: false });
    expect((await world.settle(nodeId)).output).toEqual({ status: "Ready" });
    const kubeletConfig = agent.envelopes
      .filter((e) => e.stepId === "kubelet-config")
      .flatMap((e) => e.params.files as { path: string; content: string }[])
      .find((f) => f.path === "/etc/flexnode/kubelet/config.yaml");
    expect(kubeletConfig?.content).toContain("clusterDNS: [10.2.0.10]");
    expect(kubeletConfig?.content).not.toContain("10.0.0.10");
  });

  it.each([
    { network: { networkPlugin: "kubenet" as const, podCidr: "10.244.0.0/16" }, named: "networkPlugin 'kubenet'" },
    { network: { networkPlugin: "azure" as const }, named: "networkPlugin 'azure'" },
    {
      network: { networkPlugin: "azure" as const, networkPluginMode: "overlay" as const, podCidr: "192.168.0.0/16" },
      named: "networkPlugin 'azure' (networkPluginMode 'overlay')",
    },
  ])("refuses a pool on a cluster whose pod network is Azure's ($named), and creates none", async ({ network, named }) => {
    world = await startWorld();
    world.arm.addCluster({ subscriptionId: SUBSCRIPTION, resourceGroup: CLUSTER_RG, name: "aks-vnet", location: "eastus", network });
    const res = await world.app.call("POST", "/api/manage/pools", {
      headers: admin,
      body: { name: "vnet", clusterResourceId: clusterId("aks-vnet"), arc: { resourceGroupId: ARC_RG_ID, location: "eastus" } },
    });
    expect(res.status).toBe(409);
    expect(res.headers["content-type"]).toBe("application/problem+json");
    expect(res.json).toMatchObject({
      type: "https://flexnode.dev/problems/cluster-network-plugin",
      networkPlugin: network.networkPlugin,
      requiredNetworkPlugin: "none",
      clusterResourceId: clusterId("aks-vnet"),
    });
    expect((res.json as { detail: string }).detail).toContain(named);
    expect((res.json as { detail: string }).detail).toContain("networkPlugin 'none'");
    expect((await world.app.call("GET", "/api/manage/pools/vnet", { headers: admin })).status).toBe(404);
  });

  it("refuses moving a pool onto such a cluster, and still lets its other settings change", async () => {
    world = await startWorld();
    world.arm.addCluster({
      subscriptionId: SUBSCRIPTION,
      resourceGroup: CLUSTER_RG,
      name: "aks-vnet",
      location: "eastus",
      network: { networkPlugin: "kubenet" },
    });
    const current = (await world.app.call("GET", "/api/manage/pools/edge", { headers: admin })).json as Record<string, unknown>;
    const spec = { clusterResourceId: current["clusterResourceId"], arc: current["arc"], roleGrants: current["roleGrants"], maxInFlight: 50 };
    const moved = await world.app.call("PUT", "/api/manage/pools/edge", { headers: admin, body: { ...spec, clusterResourceId: clusterId("aks-vnet") } });
    expect(moved.status).toBe(409);
    expect(moved.json).toMatchObject({ type: "https://flexnode.dev/problems/cluster-network-plugin", networkPlugin: "kubenet" });
    expect((await world.app.call("PUT", "/api/manage/pools/edge", { headers: admin, body: spec })).status).toBe(200);
  });
});
