/** What the node plan writes for the container runtime, the pod network and the kubelet, per OS family. */
import { describe, expect, it } from "vitest";
import { createKubeActivities, type KubeDeps } from "../../orchestrations/activities/kube.js";
import { planFor } from "../../orchestrations/activities/node-plan.js";
import type { NodeContext } from "../../orchestrations/activities/node-context.js";
import { buildNodePlan, type ArtifactCatalog, type PlanStep } from "../../orchestrations/node-plan/node-plan.js";
import { CLUSTER_ID } from "./world.js";

const pin = (name: string) => ({ url: `https://mirror.example.net/${name}`, sha256: "0".repeat(64) });
const both = (name: string) => ({ amd64: pin(`amd64/${name}`), arm64: pin(`arm64/${name}`) });
const CATALOG: ArtifactCatalog = {
  containerd: both("containerd.tar.gz"),
  kubernetes: { "1.31.2": both("kubelet") },
  cniPlugins: both("cni.tgz"),
  runc: both("runc"),
  sysext: { containerd: both("containerd.raw"), kubernetes: { "1.31.2": both("kubernetes.raw") } },
};

const plan = (immutable: boolean, catalog: ArtifactCatalog = CATALOG, clusterDns = "10.0.0.10"): PlanStep[] =>
  buildNodePlan({
    nodeName: "fn-plan",
    arch: "amd64",
    immutable,
    kubernetesVersion: "1.31.2",
    apiServer: "https://aks.example:443",
    clusterDns,
    labels: {},
    taints: [],
    bootstrapSecretRef: "bootstrap-kubeconfig",
    clusterCaPem: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    catalog,
  });

type Written = { path: string; content: string; mode: string };
const written = (steps: PlanStep[]): Written[] => steps.filter((s) => s.kind === "writeFiles").flatMap((s) => s.params.files as unknown as Written[]);
const file = (steps: PlanStep[], path: string) => written(steps).find((f) => f.path === path);

describe.each([false, true])("the node plan (immutable: %s)", (immutable) => {
  it("writes no CNI config: the cluster's overlay CNI does, into the directory the plan creates so a reset removes it", () => {
    const steps = plan(immutable);
    // Only a file libcni never loads (it reads .conf, .conflist and .json), so the directory is the plan's, not containerd's.
    expect(written(steps).filter((f) => f.path.startsWith("/etc/cni/"))).toEqual([expect.objectContaining({ path: "/etc/cni/net.d/README.flexnode" })]);
    expect(written(steps).filter((f) => /^\/etc\/cni\/.*\.(conf|conflist|json)$/.test(f.path))).toEqual([]);
    expect(JSON.stringify(steps)).not.toContain("10.244.");
    expect(steps.find((s) => s.stepId === "cni-plugins")?.params).toMatchObject({ destination: "/opt/cni/bin", unpack: "tar.gz" });
  });

  it("overrides kubeadm's kubelet drop-in, which would reset the unit's ExecStart, with a same-named one in /etc", () => {
    const mask = file(plan(immutable), "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf");
    expect(mask).toBeDefined();
    expect(mask!.content.split("\n").filter((l) => l.trim() !== "" && !l.startsWith("#"))).toEqual([]);
  });

  it("gives the kubelet the cluster DNS it is given", () => {
    expect(file(plan(immutable, CATALOG, "172.16.0.10"), "/etc/flexnode/kubelet/config.yaml")?.content).toContain("clusterDNS: [172.16.0.10]");
  });
});

describe("the mutable host's container runtime", () => {
  it("installs the pinned runc next to the kubelet, since containerd's release tarball has none", () => {
    const steps = plan(false);
    const runc = steps.find((s) => s.stepId === "runc");
    expect(runc).toMatchObject({ kind: "fetchArtifact", params: { artifact: CATALOG.runc!.amd64, destination: "/opt/flexnode/bin/runc", mode: "0755" } });
    // Before the unit that needs it starts.
    expect(steps.indexOf(runc!)).toBeLessThan(steps.findIndex((s) => s.stepId === "start-kubelet"));
  });

  it("without a runc in the catalog, leaves containerd the host's own runc: no runc step, no BinaryName", () => {
    const { runc: _, ...withoutRunc } = CATALOG;
    const steps = plan(false, withoutRunc);
    expect(steps.find((s) => s.stepId === "runc")).toBeUndefined();
    expect(file(steps, "/etc/flexnode/containerd/config.toml")!.content).not.toContain("BinaryName");
    expect(file(steps, "/etc/flexnode/containerd/config.toml")!.content).toContain("SystemdCgroup = true");
    expect(() => plan(true, withoutRunc)).not.toThrow();
  });

  it("runs containerd with a config whose runc uses the systemd cgroup driver, as the kubelet does", () => {
    const steps = plan(false);
    const config = file(steps, "/etc/flexnode/containerd/config.toml")?.content;
    expect(config).toBeDefined();
    expect(config).toMatch(/^version = 2$/m);
    const options = config!.split('[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]\n')[1]!.split("\n[")[0]!;
    expect(options).toContain("SystemdCgroup = true");
    expect(options).toContain('BinaryName = "/opt/flexnode/bin/runc"');
    expect(file(steps, "/etc/flexnode/kubelet/config.yaml")?.content).toContain("cgroupDriver: systemd");
    expect(file(steps, "/etc/systemd/system/flexnode-containerd.service")?.content).toMatch(
      /^ExecStart=\/opt\/flexnode\/containerd\/bin\/containerd --config \/etc\/flexnode\/containerd\/config\.toml$/m,
    );
  });

  it("leaves an immutable host's containerd, from its image, without a flexnode config or runc", () => {
    const steps = plan(true);
    expect(steps.some((s) => s.stepId === "runc")).toBe(false);
    expect(written(steps).some((f) => f.path.startsWith("/etc/flexnode/containerd/"))).toBe(false);
  });
});

describe("the cluster facts of a plan", () => {
  const context = { nodeId: "fn-plan", arch: "amd64", immutable: false, labels: {}, taints: [] } as unknown as NodeContext;
  const node = { nodeId: "fn-plan", labels: {}, taints: [] };
  const kubeletConfig = (steps: PlanStep[]) => file(steps, "/etc/flexnode/kubelet/config.yaml")!.content;

  it("uses AKS's default DNS service IP for a history written before clusterInfo returned one", () => {
    const steps = planFor(context, node, { kubernetesVersion: "1.31.2", apiServer: "https://aks.example:443", caPem: "" }, JSON.stringify(CATALOG));
    expect(kubeletConfig(steps)).toContain("clusterDNS: [10.0.0.10]");
  });

  const clusterInfo = (networkProfile: Record<string, unknown> | undefined) => {
    const cluster = { currentKubernetesVersion: "1.31.2", ...(networkProfile ? { networkProfile } : {}) };
    const deps = {
      arm: () => ({ containerService: () => ({ managedClusters: { get: async () => cluster } }) }),
      kube: async () => ({ server: "https://aks.example:443" }),
    } as unknown as KubeDeps;
    return createKubeActivities(deps).clusterInfo({ clusterResourceId: CLUSTER_ID });
  };

  it("reads the cluster's DNS service IP, AKS's default only when the cluster reports none", async () => {
    await expect(clusterInfo({ networkPlugin: "none", dnsServiceIP: "10.2.0.10" })).resolves.toMatchObject({ clusterDns: "10.2.0.10" });
    await expect(clusterInfo({ networkPlugin: "none" })).resolves.toMatchObject({ clusterDns: "10.0.0.10" });
  });

  it.each([{ networkPlugin: "kubenet" }, { networkPlugin: "azure", networkPluginMode: "overlay" }, undefined])(
    "fails an onboarding onto a cluster with %o before any node step",
    async (profile) => {
      await expect(clusterInfo(profile)).rejects.toThrow(/networkPlugin 'none'/);
    },
  );
});
