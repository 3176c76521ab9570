import { ContainerServiceClient } from "@azure/arm-containerservice";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  bootstrapKubeconfig,
  bootstrapTokenSecret,
  EntraTokenRequiredError,
  KubeApiError,
  KubeClient,
  KubeconfigError,
  kubeClusterFromKubeconfig,
  kubeTargetFromKubeconfig,
  poolBootstrapRbac,
} from "../../orchestrations/clients/kube/index.js";
import { ArmEmulator, emulatorCredential, type ListeningEmulator } from "../arm-emulator/index.js";
import { startCluster, type Cluster } from "./test-fixtures.js";

const SUBSCRIPTION_ID = "00000000-0000-4000-8000-000000000001";
const RESOURCE_GROUP = "rg-flex";
const service = emulatorCredential("5e1f0000-0000-4000-8000-000000000001");

function decode(value: Uint8Array | undefined): string {
  return Buffer.from(value ?? new Uint8Array()).toString("utf8");
}

describe("from the AKS admin kubeconfig to the cluster (the saga's path)", () => {
  let cluster: Cluster;
  let arm: ArmEmulator;
  let armServer: ListeningEmulator;
  let aks: ContainerServiceClient;
  let adminToken: string;
  const clients: KubeClient[] = [];

  beforeEach(async () => {
    cluster = await startCluster();
    arm = new ArmEmulator({ clock: cluster.clock, resourceGroups: [{ subscriptionId: SUBSCRIPTION_ID, name: RESOURCE_GROUP, location: "eastus" }] });
    adminToken = arm.addCluster({
      subscriptionId: SUBSCRIPTION_ID,
      resourceGroup: RESOURCE_GROUP,
      name: "aks",
      serverUrl: cluster.running.server,
      caPem: cluster.running.caPem,
    }).adminToken;
    arm.addCluster({
      subscriptionId: SUBSCRIPTION_ID,
      resourceGroup: RESOURCE_GROUP,
      name: "aks-aad",
      serverUrl: cluster.running.server,
      caPem: cluster.running.caPem,
      disableLocalAccounts: true,
      aadProfile: { managed: true, enableAzureRBAC: true },
    });
    armServer = await arm.listen();
    aks = new ContainerServiceClient(service, SUBSCRIPTION_ID, { ...armServer.clientOptions(), retryOptions: { maxRetries: 0 } });
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await armServer.close();
    await cluster.close();
  });

  async function adminKubeconfig(): Promise<string> {
    const credentials = await aks.managedClusters.listClusterAdminCredentials(RESOURCE_GROUP, "aks");
    return decode(credentials.kubeconfigs?.[0]?.value);
  }

  it("parses the real admin kubeconfig, and the client works once the cluster knows the token", async () => {
    const target = kubeTargetFromKubeconfig(await adminKubeconfig());
    expect(target).toEqual({ server: cluster.running.server, caPem: cluster.running.caPem, token: adminToken });

    const client = new KubeClient(target);
    clients.push(client);
    // The emulated cluster does not know this token yet: 401, as an API server answers an unknown bearer token.
    const refused = await client.getNode("any").catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(KubeApiError);
    expect(refused).toMatchObject({ status: 401, reason: "Unauthorized" });

    cluster.emulator.addToken(target.token);
    for (const b of poolBootstrapRbac("gpu").bindings) expect(await client.applyClusterRoleBinding(b)).toBe("created");
    const issued = bootstrapTokenSecret({ pool: "gpu", nodeId: "fn-0123456789abcdef01234567", expiresAt: new Date(cluster.clock.now() + 3_600_000) });
    expect(await client.createSecret("kube-system", issued.secret)).toBe("created");

    // The node's kubeconfig points at the same server and CA with the bootstrap token, and it is enough to join.
    const nodeKubeconfig = bootstrapKubeconfig({ server: target.server, caPem: target.caPem, token: issued.token, clusterName: "aks" });
    const nodeTarget = kubeTargetFromKubeconfig(nodeKubeconfig);
    expect(nodeTarget).toEqual({ server: target.server, caPem: target.caPem, token: issued.token });
    expect(cluster.emulator.joinNode("fn-0123456789abcdef01234567", { bootstrapToken: nodeTarget.token }).joined).toBe(true);
    expect(await client.getNode("fn-0123456789abcdef01234567")).toMatchObject({ ready: true });

    expect(await client.deleteSecret("kube-system", issued.secret.name)).toBe("deleted");
    expect(cluster.emulator.authenticateBootstrapToken(issued.token)).toBeUndefined();
    expect(await client.deleteNode("fn-0123456789abcdef01234567")).toBe("deleted");
    expect(cluster.emulator.requests.filter({ user: "clusterAdmin" }).every((e) => e.status < 300)).toBe(true);
  });

  it("turns an exec (kubelogin) kubeconfig into a typed error carrying the cluster and the Entra scope", async () => {
    const credentials = await aks.managedClusters.listClusterUserCredentials(RESOURCE_GROUP, "aks-aad");
    const yaml = decode(credentials.kubeconfigs?.[0]?.value);
    const error = (() => {
      try {
        kubeTargetFromKubeconfig(yaml);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(EntraTokenRequiredError);
    expect(error).toBeInstanceOf(KubeconfigError);
    expect(error).toMatchObject({
      serverId: "6dae42f8-4368-4678-94ff-3960e28e3630",
      scope: "6dae42f8-4368-4678-94ff-3960e28e3630/.default",
      cluster: { server: cluster.running.server, caPem: cluster.running.caPem },
      message: expect.stringContaining("Entra access token for the AKS server app"),
    });
    expect(kubeClusterFromKubeconfig(yaml)).toEqual({ server: cluster.running.server, caPem: cluster.running.caPem });
  });
});

describe("kubeconfig parsing edge cases", () => {
  const ca = Buffer.from("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n").toString("base64");
  const config = (cluster: string, user: string, extra = "current-context: c") =>
    `apiVersion: v1\nkind: Config\nclusters:\n- name: k\n  cluster:\n${cluster}\nusers:\n- name: u\n  user:\n${user}\ncontexts:\n- name: c\n  context: {cluster: k, user: u}\n${extra}\n`;
  const server = "    server: https://aks.example:443";
  const caLine = `    certificate-authority-data: ${ca}`;

  it("keeps a token that YAML would read as a number", () => {
    expect(kubeTargetFromKubeconfig(config(`${server}\n${caLine}`, "    token: 0123456789e10")).token).toBe("0123456789e10");
  });

  it("uses the only context when current-context is missing", () => {
    expect(kubeTargetFromKubeconfig(config(`${server}\n${caLine}`, "    token: t", "")).server).toBe("https://aks.example:443");
  });

  it.each([
    ["insecure TLS", config(`${server}\n${caLine}\n    insecure-skip-tls-verify: true`, "    token: t"), /disables TLS verification/],
    ["a CA file", config(`${server}\n    certificate-authority: /etc/ca.crt`, "    token: t"), /CA file path/],
    ["plain http", config(`    server: http://aks.example\n${caLine}`, "    token: t"), /must be https/],
    ["a client certificate user", config(`${server}\n${caLine}`, `    client-certificate-data: ${ca}`), /client certificate/],
    ["a token file", config(`${server}\n${caLine}`, "    tokenFile: /var/run/token"), /tokenFile/],
    ["a missing context", config(`${server}\n${caLine}`, "    token: t", "current-context: other"), /not among the contexts/],
    ["no clusters", "apiVersion: v1\nkind: Config\nusers: []\n", /malformed/],
    ["not YAML", "clusters: [\n", /not valid YAML/],
  ])("refuses %s with a KubeconfigError", (_what, yaml, message) => {
    expect(() => kubeTargetFromKubeconfig(yaml)).toThrow(KubeconfigError);
    expect(() => kubeTargetFromKubeconfig(yaml)).toThrow(message);
  });

  it("treats the legacy azure auth-provider like exec", () => {
    const yaml = config(`${server}\n${caLine}`, "    auth-provider:\n      name: azure");
    expect(() => kubeTargetFromKubeconfig(yaml)).toThrow(EntraTokenRequiredError);
  });

  it("writes a bootstrap kubeconfig only for a bootstrap token, an https server and a PEM CA", () => {
    const pem = Buffer.from(ca, "base64").toString("utf8");
    const ok = { server: "https://aks.example:443", caPem: pem, token: "abcdef.0123456789abcdef", clusterName: "aks" };
    expect(bootstrapKubeconfig(ok)).toContain("current-context: kubelet-bootstrap@aks");
    expect(() => bootstrapKubeconfig({ ...ok, token: "admin-token" })).toThrow(RangeError);
    expect(() => bootstrapKubeconfig({ ...ok, server: "http://aks.example" })).toThrow(RangeError);
    expect(() => bootstrapKubeconfig({ ...ok, caPem: "nope" })).toThrow(RangeError);
  });
});
