import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { bootstrapTokenSecret, KubeApiError, poolBootstrapRbac } from "../../orchestrations/clients/kube/index.js";
import { ADMIN_TOKEN, rawRequest, startCluster, type Cluster } from "./test-fixtures.js";

const CRB_PATH = "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings";
const BUILT_IN_ROLES = [
  "cluster-admin",
  "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
  "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
  "system:node",
  "system:node-bootstrapper",
];
/** Roles that would hand a bootstrap token holder more than "create a CSR and get it approved". */
const FORBIDDEN_ROLES = ["system:node", "cluster-admin", "admin", "edit", "system:masters"];

describe("poolBootstrapRbac", () => {
  it.each(["gpu", "edge-eu-1", "a"])("binds pool %s's bootstrap group to exactly node-bootstrapper and node-client approval, and nodes to renewal", (pool) => {
    const { bindings } = poolBootstrapRbac(pool);
    const byRole = Object.fromEntries(bindings.map((b) => [b.roleRef.name, b.subjects]));
    expect(byRole).toEqual({
      "system:node-bootstrapper": [{ kind: "Group", name: `system:bootstrappers:flexnode:${pool}` }],
      "system:certificates.k8s.io:certificatesigningrequests:nodeclient": [{ kind: "Group", name: `system:bootstrappers:flexnode:${pool}` }],
      // Renewal of a node's own certificate, as kubeadm binds it: the approver checks the CSR names the requester.
      "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient": [{ kind: "Group", name: "system:nodes" }],
    });
    for (const b of bindings) {
      expect(FORBIDDEN_ROLES).not.toContain(b.roleRef.name);
      expect(b.name).toMatch(new RegExp(`^flexnode:${pool}:`));
    }
    expect(poolBootstrapRbac(pool)).toEqual({ bindings });
  });

  it("refuses a pool name that would not make a valid bootstrap group", () => {
    expect(() => poolBootstrapRbac("GPU")).toThrow(RangeError);
    expect(() => poolBootstrapRbac("gpu_pool")).toThrow(RangeError);
  });
});

describe("cluster RBAC through the real client", () => {
  let cluster: Cluster;
  beforeEach(async () => {
    cluster = await startCluster();
  });
  afterEach(() => cluster.close());

  const nonBuiltIn = () => cluster.emulator.inspect().clusterRoleBindings.filter((b) => !b.builtIn);

  it("starts with the built-in bootstrap policy", () => {
    const roles = cluster.emulator.inspect().clusterRoles;
    expect(roles.map((r) => r.name)).toEqual(BUILT_IN_ROLES);
    expect(roles.every((r) => r.builtIn)).toBe(true);
    expect(nonBuiltIn()).toEqual([]);
  });

  it("applies the pool RBAC: created, then unchanged without a write", async () => {
    const { bindings } = poolBootstrapRbac("gpu");
    for (const b of bindings) expect(await cluster.client.applyClusterRoleBinding(b)).toBe("created");
    const before = cluster.emulator.inspect().clusterRoleBindings;
    for (const b of bindings) expect(await cluster.client.applyClusterRoleBinding(b)).toBe("unchanged");
    expect(cluster.emulator.inspect().clusterRoleBindings).toEqual(before);
    expect(cluster.emulator.requests.filter({ method: "PUT" })).toEqual([]);

    expect(nonBuiltIn().map((b) => ({ name: b.name, role: b.roleRef.name, subjects: b.subjects }))).toEqual([
      {
        name: "flexnode:gpu:auto-approve-node-client-csr",
        role: "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
        subjects: [{ kind: "Group", apiGroup: "rbac.authorization.k8s.io", name: "system:bootstrappers:flexnode:gpu" }],
      },
      {
        name: "flexnode:gpu:auto-approve-node-client-renewal",
        role: "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
        subjects: [{ kind: "Group", apiGroup: "rbac.authorization.k8s.io", name: "system:nodes" }],
      },
      {
        name: "flexnode:gpu:node-bootstrapper",
        role: "system:node-bootstrapper",
        subjects: [{ kind: "Group", apiGroup: "rbac.authorization.k8s.io", name: "system:bootstrappers:flexnode:gpu" }],
      },
    ]);
  });

  it("reports updated when the live binding differs, keeping labels others added", async () => {
    const [binding] = poolBootstrapRbac("gpu").bindings;
    await cluster.client.applyClusterRoleBinding(binding!);
    const widened = { ...binding!, subjects: [...binding!.subjects, { kind: "User" as const, name: "someone" }] };
    expect(await cluster.client.applyClusterRoleBinding(widened)).toBe("updated");
    expect(await cluster.client.applyClusterRoleBinding(binding!)).toBe("updated");
    expect(await cluster.client.applyClusterRoleBinding(binding!)).toBe("unchanged");
    expect(nonBuiltIn()[0]?.subjects).toHaveLength(1);

    // A label added by someone else survives our apply; ours is restored.
    const live = await rawRequest(cluster.running, "GET", `${CRB_PATH}/${binding!.name}`, { token: ADMIN_TOKEN });
    const meta = live.body["metadata"] as { labels: Record<string, string> };
    meta.labels = { other: "x" };
    expect((await rawRequest(cluster.running, "PUT", `${CRB_PATH}/${binding!.name}`, { token: ADMIN_TOKEN, body: live.body })).status).toBe(200);
    expect(await cluster.client.applyClusterRoleBinding(binding!)).toBe("updated");
    expect(nonBuiltIn()[0]?.labels).toEqual({ other: "x", ...binding!.labels });
  });

  it("replaces a binding whose roleRef changed, since roleRef is immutable", async () => {
    const [binding] = poolBootstrapRbac("gpu").bindings;
    await cluster.client.applyClusterRoleBinding({ ...binding!, roleRef: { kind: "ClusterRole", name: "system:node" } });
    const uid = (await rawRequest(cluster.running, "GET", `${CRB_PATH}/${binding!.name}`, { token: ADMIN_TOKEN })).body["metadata"] as { uid: string };

    const put = await rawRequest(cluster.running, "PUT", `${CRB_PATH}/${binding!.name}`, {
      token: ADMIN_TOKEN,
      body: { metadata: { name: binding!.name }, roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "system:node-bootstrapper" } },
    });
    expect(put).toMatchObject({ status: 422, body: { reason: "Invalid", details: { causes: [{ field: "roleRef" }] } } });

    expect(await cluster.client.applyClusterRoleBinding(binding!)).toBe("updated");
    const after = await rawRequest(cluster.running, "GET", `${CRB_PATH}/${binding!.name}`, { token: ADMIN_TOKEN });
    expect(after.body["roleRef"]).toMatchObject({ name: "system:node-bootstrapper" });
    expect((after.body["metadata"] as { uid: string }).uid).not.toBe(uid.uid);
  });

  it("applies ClusterRoles: created, unchanged, updated when the rules change", async () => {
    const rules = [{ apiGroups: [""], resources: ["configmaps"], verbs: ["get"], resourceNames: [] }];
    const role = { name: "flexnode:reader", rules, labels: { "app.kubernetes.io/managed-by": "flexnode-onboarding" } };
    expect(await cluster.client.applyClusterRole(role)).toBe("created");
    // The server drops the empty resourceNames; the comparison must not mistake that for a change.
    expect(await cluster.client.applyClusterRole(role)).toBe("unchanged");
    expect(await cluster.client.applyClusterRole({ ...role, rules: [{ ...rules[0]!, verbs: ["get", "list"] }] })).toBe("updated");
    expect(cluster.emulator.inspect().clusterRoles.find((r) => r.name === "flexnode:reader")?.rules).toEqual([
      { apiGroups: [""], resources: ["configmaps"], verbs: ["get", "list"] },
    ]);
  });

  it("answers a PUT with a stale resourceVersion with 409 Conflict", async () => {
    const [binding] = poolBootstrapRbac("gpu").bindings;
    await cluster.client.applyClusterRoleBinding(binding!);
    const live = (await rawRequest(cluster.running, "GET", `${CRB_PATH}/${binding!.name}`, { token: ADMIN_TOKEN })).body;
    expect((await rawRequest(cluster.running, "PUT", `${CRB_PATH}/${binding!.name}`, { token: ADMIN_TOKEN, body: live })).status).toBe(200);
    const stale = await rawRequest(cluster.running, "PUT", `${CRB_PATH}/${binding!.name}`, { token: ADMIN_TOKEN, body: live });
    expect(stale).toMatchObject({
      status: 409,
      body: {
        kind: "Status",
        apiVersion: "v1",
        status: "Failure",
        reason: "Conflict",
        code: 409,
        message: `Operation cannot be fulfilled on clusterrolebindings.rbac.authorization.k8s.io "${binding!.name}": the object has been modified; please apply your changes to the latest version and try again`,
      },
    });
  });

  it("surfaces a conflicting concurrent update during apply as KubeApiError Conflict, without retrying", async () => {
    const [binding] = poolBootstrapRbac("gpu").bindings;
    await cluster.client.applyClusterRoleBinding(binding!);
    cluster.emulator.faults.inject({ method: "PUT", path: `${CRB_PATH}/${binding!.name}`, status: 409, code: "Conflict" });
    const error = await cluster.client.applyClusterRoleBinding({ ...binding!, labels: { changed: "yes" } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KubeApiError);
    expect(error).toMatchObject({ status: 409, reason: "Conflict" });
    expect(cluster.emulator.requests.filter({ method: "PUT" })).toHaveLength(1);
  });

  it("deletes a binding once, then reports it absent", async () => {
    const [binding] = poolBootstrapRbac("gpu").bindings;
    await cluster.client.applyClusterRoleBinding(binding!);
    expect(await cluster.client.deleteClusterRoleBinding(binding!.name)).toBe("deleted");
    expect(await cluster.client.deleteClusterRoleBinding(binding!.name)).toBe("absent");
    expect(nonBuiltIn()).toEqual([]);
  });

  it("gives a bootstrap-token holder of a pool with applied RBAC no API access beyond bootstrapping", async () => {
    for (const b of poolBootstrapRbac("gpu").bindings) await cluster.client.applyClusterRoleBinding(b);
    const issued = bootstrapTokenSecret({ pool: "gpu", nodeId: "fn-1", expiresAt: new Date(cluster.clock.now() + 60_000) });
    await cluster.client.createSecret("kube-system", issued.secret);
    cluster.emulator.joinNode("node-1", { bootstrapToken: issued.token });
    const asKubelet = cluster.clientWith(issued.token);

    // system:node would allow reading nodes and secrets; cluster-admin everything. Neither may be reachable.
    await expect(asKubelet.getNode("node-1")).rejects.toMatchObject({ status: 403, reason: "Forbidden" });
    await expect(asKubelet.listSecrets("kube-system", "")).rejects.toMatchObject({
      status: 403,
      message: expect.stringContaining(
        `User "system:bootstrap:${issued.tokenId}" cannot list resource "secrets" in API group "" in the namespace "kube-system"`,
      ),
    });
    await expect(asKubelet.applyClusterRoleBinding(poolBootstrapRbac("other").bindings[0]!)).rejects.toMatchObject({ status: 403 });
    await expect(asKubelet.deleteNode("node-1")).rejects.toMatchObject({ status: 403 });
  });
});
