import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { bootstrapTokenSecret, poolBootstrapRbac } from "../../orchestrations/clients/kube/index.js";
import { startCluster, type Cluster } from "./test-fixtures.js";

const MINUTE = 60_000;

describe("node join and Node objects", () => {
  let cluster: Cluster;
  beforeEach(async () => {
    cluster = await startCluster();
  });
  afterEach(() => cluster.close());

  async function issueToken(pool = "gpu", ttlMs = 30 * MINUTE) {
    const issued = bootstrapTokenSecret({ pool, nodeId: "fn-0123456789abcdef01234567", expiresAt: new Date(cluster.clock.now() + ttlMs) });
    expect(await cluster.client.createSecret("kube-system", issued.secret)).toBe("created");
    return issued;
  }

  async function applyPoolRbac(pool = "gpu") {
    for (const b of poolBootstrapRbac(pool).bindings) await cluster.client.applyClusterRoleBinding(b);
  }

  it("joins a node with a valid token whose group is bound, and getNode reports it Ready", async () => {
    await applyPoolRbac();
    const { token, tokenId } = await issueToken();
    expect(cluster.emulator.authenticateBootstrapToken(token)).toEqual(["system:bootstrappers", "system:bootstrappers:flexnode:gpu"]);

    const joined = cluster.emulator.joinNode("fn-0123456789abcdef01234567", { bootstrapToken: token, labels: { "flexnode.dev/pool": "gpu" } });
    expect(joined).toMatchObject({ joined: true, node: { name: "fn-0123456789abcdef01234567", ready: "True" } });
    expect(await cluster.client.getNode("fn-0123456789abcdef01234567")).toEqual({
      name: "fn-0123456789abcdef01234567",
      ready: true,
      labels: expect.objectContaining({
        "flexnode.dev/pool": "gpu",
        "kubernetes.io/hostname": "fn-0123456789abcdef01234567",
        "kubernetes.io/os": "linux",
      }) as unknown,
    });
    expect(cluster.emulator.inspect().joins).toEqual([
      { node: "fn-0123456789abcdef01234567", tokenId, groups: ["system:bootstrappers", "system:bootstrappers:flexnode:gpu"], at: cluster.clock.now() },
    ]);
  });

  it("lets a joined kubelet renew its client certificate only once some binding grants selfnodeclient", async () => {
    const bootstrapOnly = poolBootstrapRbac("gpu").bindings.filter((b) => !b.subjects.some((s) => s.name === "system:nodes"));
    for (const b of bootstrapOnly) await cluster.client.applyClusterRoleBinding(b);
    const { token } = await issueToken();
    expect(cluster.emulator.joinNode("node-a", { bootstrapToken: token })).toMatchObject({ joined: true });
    expect(cluster.emulator.renewNodeClientCertificate("node-a")).toEqual({ renewed: false, reason: expect.stringMatching(/stays Pending.*selfnodeclient/) });

    await applyPoolRbac();
    expect(cluster.emulator.renewNodeClientCertificate("node-a")).toEqual({ renewed: true });
    expect(cluster.emulator.renewNodeClientCertificate("node-b")).toMatchObject({ renewed: false });
  });

  it("follows the Ready condition: NotReady and Unknown are not ready", async () => {
    await applyPoolRbac();
    const { token } = await issueToken();
    cluster.emulator.joinNode("node-a", { bootstrapToken: token });
    cluster.emulator.setNodeReady("node-a", false);
    expect((await cluster.client.getNode("node-a"))?.ready).toBe(false);
    cluster.emulator.setNodeReady("node-a", "Unknown");
    expect((await cluster.client.getNode("node-a"))?.ready).toBe(false);
    cluster.emulator.setNodeReady("node-a", true);
    expect((await cluster.client.getNode("node-a"))?.ready).toBe(true);
  });

  it("refuses a token once it has expired on the clock", async () => {
    await applyPoolRbac();
    const { token } = await issueToken("gpu", 10 * MINUTE);
    cluster.clock.advance(10 * MINUTE);
    expect(cluster.emulator.authenticateBootstrapToken(token)).toBeUndefined();
    expect(cluster.emulator.joinNode("node-a", { bootstrapToken: token })).toMatchObject({
      joined: false,
      reason: expect.stringContaining("does not authenticate"),
    });
    expect(cluster.emulator.inspect().nodes).toEqual([]);
  });

  it("refuses a valid token when no binding grants its group node-bootstrapper", async () => {
    const { token } = await issueToken();
    expect(cluster.emulator.joinNode("node-a", { bootstrapToken: token })).toMatchObject({
      joined: false,
      reason: expect.stringContaining("system:node-bootstrapper"),
    });
    // Another pool's RBAC does not help: the group is per pool.
    await applyPoolRbac("other");
    expect(cluster.emulator.joinNode("node-a", { bootstrapToken: token })).toMatchObject({ joined: false });
    // CSR creation alone is not enough: without auto-approval the CSR stays pending.
    await cluster.client.applyClusterRoleBinding(poolBootstrapRbac("gpu").bindings.find((b) => b.roleRef.name === "system:node-bootstrapper")!);
    expect(cluster.emulator.joinNode("node-a", { bootstrapToken: token })).toMatchObject({ joined: false, reason: expect.stringContaining("Pending") });
    expect(cluster.emulator.inspect().nodes).toEqual([]);
  });

  it("refuses a wrong secret, a revoked token and a token that is not meant for authentication", async () => {
    await applyPoolRbac();
    const issued = await issueToken();
    const wrong = `${issued.tokenId}.${"0".repeat(16)}`;
    expect(cluster.emulator.joinNode("node-a", { bootstrapToken: wrong }).joined).toBe(false);

    const notForAuth = bootstrapTokenSecret({ pool: "gpu", nodeId: "fn-x", expiresAt: new Date(cluster.clock.now() + MINUTE) });
    notForAuth.secret.stringData["usage-bootstrap-authentication"] = "false";
    await cluster.client.createSecret("kube-system", notForAuth.secret);
    expect(cluster.emulator.joinNode("node-a", { bootstrapToken: notForAuth.token }).joined).toBe(false);

    expect(await cluster.client.deleteSecret("kube-system", issued.secret.name)).toBe("deleted");
    expect(cluster.emulator.joinNode("node-a", { bootstrapToken: issued.token }).joined).toBe(false);
  });

  it("deletes a Node once, then reports it absent", async () => {
    await applyPoolRbac();
    const { token } = await issueToken();
    cluster.emulator.joinNode("node-a", { bootstrapToken: token });
    expect(await cluster.client.deleteNode("node-a")).toBe("deleted");
    expect(await cluster.client.deleteNode("node-a")).toBe("absent");
    expect(await cluster.client.getNode("node-a")).toBeUndefined();
  });

  it("reset() forgets what callers made but keeps the built-in policy and tokens", async () => {
    await applyPoolRbac();
    const { token } = await issueToken();
    cluster.emulator.joinNode("node-a", { bootstrapToken: token });
    cluster.emulator.reset();
    const state = cluster.emulator.inspect();
    expect(state).toMatchObject({ secrets: [], nodes: [], joins: [] });
    expect(state.clusterRoleBindings.map((b) => b.name)).toEqual(["cluster-admin"]);
    expect(state.clusterRoles).toHaveLength(5);
    expect(cluster.emulator.requests.entries).toEqual([]);
    expect(await cluster.client.getNode("node-a")).toBeUndefined();
  });
});
