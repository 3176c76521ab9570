/**
 * Pool and token labels go to the kubelet as --node-labels (node-plan.ts), and the kubelet exits at start on a
 * kubernetes.io or k8s.io key it does not own (cmd/kubelet/app/options/options.go, ValidateKubeletFlags, after
 * k8s.io/kubelet/pkg/apis/well_known_labels.go IsKubeletLabel). `Labels` refuses those keys up front, so a pool or token
 * can never name one; taints (--register-with-taints) are not under that rule.
 */
import { describe, expect, it } from "vitest";
import { kubeletMaySetLabel, Labels, Taint } from "../../orchestrations/clients/registry/model.js";
import { buildNodePlan, type Artifact } from "../../orchestrations/node-plan/node-plan.js";
import { freshRegistry, poolSpec } from "./fixtures.js";

const issuesOf = (labels: Record<string, string>) => Labels.safeParse(labels).error?.issues.map((i) => ({ path: i.path, message: i.message })) ?? [];

describe("node label keys the kubelet refuses in --node-labels", () => {
  it.each([
    "node-role.kubernetes.io/worker",
    "node-role.kubernetes.io/control-plane",
    "kubernetes.io/role",
    "kubernetes.io/instance-type",
    "app.kubernetes.io/name",
    "k8s.io/x",
    "foo.k8s.io/x",
    "node.k8s.io/x",
    "node-restriction.kubernetes.io/x",
    "team.node-restriction.kubernetes.io/x",
    "failure-domain.kubernetes.io/zone",
    "topology.kubernetes.io/rack",
  ])("refuses %s, naming the key and the rule", (key) => {
    expect(kubeletMaySetLabel(key)).toBe(false);
    const issues = issuesOf({ team: "a", [key]: "" });
    expect(issues).toHaveLength(1);
    expect(issues[0]!.path).toEqual([key]);
    expect(issues[0]!.message).toMatch(/kubelet refuses .*kubernetes\.io and k8s\.io .*example\.com\/role.*node-role\.kubernetes\.io labels from the cluster/);
  });

  it.each([
    "kubernetes.io/hostname",
    "kubernetes.io/arch",
    "kubernetes.io/os",
    "beta.kubernetes.io/arch",
    "beta.kubernetes.io/os",
    "beta.kubernetes.io/instance-type",
    "node.kubernetes.io/instance-type",
    "node.kubernetes.io/anything",
    "gpu.node.kubernetes.io/model",
    "kubelet.kubernetes.io/x",
    "a.kubelet.kubernetes.io/x",
    "topology.kubernetes.io/zone",
    "topology.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone",
    "failure-domain.beta.kubernetes.io/region",
    "example.com/role",
    "team",
    "kubernetes.azure.com/mode",
    "mykubernetes.io/x",
    "notk8s.io/x",
  ])("accepts %s", (key) => {
    expect(kubeletMaySetLabel(key)).toBe(true);
    expect(issuesOf({ [key]: "v" })).toEqual([]);
  });

  it("accepts every label the service itself puts in --node-labels", () => {
    const artifact: Artifact = { url: "https://artifacts.example/x", sha256: "0".repeat(64) };
    const catalog = {
      containerd: { amd64: artifact },
      kubernetes: { "1.31.0": { amd64: artifact } },
      cniPlugins: { amd64: artifact },
      runc: { amd64: artifact },
      sysext: { containerd: { amd64: artifact }, kubernetes: { "1.31.0": { amd64: artifact } } },
    };
    const plan = buildNodePlan({
      nodeName: "fn-000000000000000000000000",
      arch: "amd64",
      immutable: false,
      kubernetesVersion: "1.31.0",
      apiServer: "https://aks.example:443",
      clusterDns: "10.0.0.10",
      labels: { "example.com/role": "edge" },
      taints: [],
      bootstrapSecretRef: "bootstrap-kubeconfig",
      clusterCaPem: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
      catalog,
    });
    const flag = /--node-labels=([^\s"\\]+)/.exec(JSON.stringify(plan))?.[1];
    expect(flag).toBeDefined();
    const labels = Object.fromEntries(flag!.split(",").map((kv) => kv.split("=", 2) as [string, string]));
    expect(Object.keys(labels)).toEqual(expect.arrayContaining(["example.com/role", "kubernetes.azure.com/managed", "flexnode.dev/node"]));
    expect(issuesOf(labels)).toEqual([]);
  });

  it("keeps the key syntax: a qualified name, prefix a DNS subdomain of at most 253, name at most 63", () => {
    const prefix253 = `${"a".repeat(63)}.${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(61)}`;
    expect(prefix253).toHaveLength(253);
    expect(issuesOf({ [`${prefix253}/x`]: "", [`example.com/${"n".repeat(63)}`]: "" })).toEqual([]);
    for (const bad of [`${prefix253}e/x`, `example.com/${"n".repeat(64)}`, "Example.com/x", "-team", "a/b/c", "/x", "example.com/"]) {
      expect(issuesOf({ [bad]: "" }).map((i) => i.message)).toEqual([expect.stringMatching(/^must be a Kubernetes label key/)]);
    }
  });

  it("leaves taint keys alone: --register-with-taints has no such rule", () => {
    expect(Taint.safeParse({ key: "node-role.kubernetes.io/control-plane", effect: "NoSchedule" }).success).toBe(true);
  });
});

describe("labels stored before the rule", () => {
  it("still load, so the pool stays listable and an admin can fix it", async () => {
    const { registry } = await freshRegistry();
    // Written as a registry from before the rule would have: the registry takes a spec as given.
    await registry.pools.create("legacy", { ...poolSpec(), nodeLabels: { "node-role.kubernetes.io/worker": "" } }, "test");
    expect((await registry.pools.get("legacy"))?.nodeLabels).toEqual({ "node-role.kubernetes.io/worker": "" });
    expect((await registry.pools.list()).items.map((p) => p.name)).toContain("legacy");
  });
});
