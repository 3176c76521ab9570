/**
 * Issue 13 item 4: the service's way into a cluster (AksAccess) against the credential shapes AKS hands out — a static
 * user with client certificate, key and token (clusters with local accounts), certificate and key only, and the
 * exec (kubelogin) user of an Entra-only cluster — each handled or refused with a named error; and the bootstrap
 * token Secrets it writes carry only the usage a kubelet needs.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ArmClients } from "../../orchestrations/clients/arm/arm-clients.js";
import { AksAccess, bootstrapTokenSecret, ClientCertificateOnlyError } from "../../orchestrations/clients/kube/index.js";
import { ArmEmulator, emulatorCredential, type ClusterFixture } from "../arm-emulator/index.js";
import { startCluster, type Cluster } from "./test-fixtures.js";

const SUBSCRIPTION_ID = "00000000-0000-4000-8000-000000000001";
const RG = "rg-flex";
const service = emulatorCredential("5e1f0000-0000-4000-8000-000000000001");
const clusterId = (name: string) => `/subscriptions/${SUBSCRIPTION_ID}/resourceGroups/${RG}/providers/Microsoft.ContainerService/managedClusters/${name}`;

describe("AKS credential shapes", () => {
  let cluster: Cluster;
  let arm: ArmEmulator;
  let access: AksAccess;

  beforeEach(async () => {
    cluster = await startCluster();
    arm = new ArmEmulator({ clock: cluster.clock, resourceGroups: [{ subscriptionId: SUBSCRIPTION_ID, name: RG, location: "eastus" }] });
    const at = (name: string, extra: Partial<ClusterFixture> = {}) =>
      arm.addCluster({ subscriptionId: SUBSCRIPTION_ID, resourceGroup: RG, name, serverUrl: cluster.running.server, caPem: cluster.running.caPem, ...extra });
    cluster.emulator.addToken(at("aks").adminToken);
    at("aks-cert", { staticCredential: "certificate" });
    at("aks-entra", { disableLocalAccounts: true, aadProfile: { managed: true, enableAzureRBAC: true } });
    access = new AksAccess({ arm: new ArmClients({ credential: service, httpClient: arm.httpClient, retryOptions: { maxRetries: 0 } }), credential: service });
  });
  afterEach(async () => {
    await cluster.close();
  });

  it("uses the token of a certificate + key + token admin kubeconfig, and the cluster answers it", async () => {
    const raw = await new ArmClients({ credential: service, httpClient: arm.httpClient })
      .containerService(SUBSCRIPTION_ID)
      .managedClusters.listClusterAdminCredentials(RG, "aks");
    const yaml = Buffer.from(raw.kubeconfigs![0]!.value!).toString("utf8");
    expect(yaml).toMatch(/client-certificate-data: \S+/);
    expect(yaml).toMatch(/client-key-data: \S+/);
    expect(yaml).toMatch(/token: \S+/);
    const { client, server } = await access.get(clusterId("aks"));
    expect(server).toBe(cluster.running.server);
    expect(await client.listSecrets("kube-system", "app=none")).toEqual([]);
  });

  it("refuses a certificate-only kubeconfig with ClientCertificateOnlyError", async () => {
    await expect(access.get(clusterId("aks-cert"))).rejects.toBeInstanceOf(ClientCertificateOnlyError);
  });

  it("takes server and CA from the exec kubeconfig of an Entra-only cluster and its own Entra token", async () => {
    const { server, caPem } = await access.get(clusterId("aks-entra"));
    expect({ server, caPem }).toEqual({ server: cluster.running.server, caPem: cluster.running.caPem });
  });

  it("writes bootstrap token Secrets for authentication only", () => {
    const { secret } = bootstrapTokenSecret({ pool: "edge", nodeId: "fn-1", expiresAt: new Date(cluster.clock.now() + 3_600_000) });
    expect(Object.keys(secret.stringData).filter((k) => k.startsWith("usage-"))).toEqual(["usage-bootstrap-authentication"]);
  });
});
