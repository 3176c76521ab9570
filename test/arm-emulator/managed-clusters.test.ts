import { ContainerServiceClient } from "@azure/arm-containerservice";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { ArmEmulator } from "./arm-emulator.js";
import { NO_RETRIES, openTransport, TRANSPORTS, type ArmTransport } from "./sdk-transport.js";
import { newEmulator, RESOURCE_GROUP, serviceCredential, SUBSCRIPTION_ID } from "./test-fixtures.js";

const CA_PEM = "-----BEGIN CERTIFICATE-----\nMIIBemulatedclusterca\n-----END CERTIFICATE-----\n";
const API_SERVER = "https://127.0.0.1:6443";

function decode(value: Uint8Array | undefined): string {
  return Buffer.from(value ?? new Uint8Array()).toString("utf8");
}

describe.each(TRANSPORTS)("AKS managed clusters over %s", (kind) => {
  let emulator: ArmEmulator;
  let transport: ArmTransport;
  let aks: ContainerServiceClient;

  beforeEach(async () => {
    emulator = newEmulator().emulator;
    emulator.addCluster({
      subscriptionId: SUBSCRIPTION_ID,
      resourceGroup: RESOURCE_GROUP,
      name: "aks-local",
      location: "eastus",
      fqdn: "aks-local-1a2b3c4d.hcp.eastus.azmk8s.io",
      serverUrl: API_SERVER,
      caPem: CA_PEM,
    });
    emulator.addCluster({
      subscriptionId: SUBSCRIPTION_ID,
      resourceGroup: RESOURCE_GROUP,
      name: "aks-aad",
      disableLocalAccounts: true,
      aadProfile: { managed: true, enableAzureRBAC: true },
    });
    transport = await openTransport(emulator, kind);
    aks = new ContainerServiceClient(serviceCredential, SUBSCRIPTION_ID, { ...transport.options, ...NO_RETRIES });
  });
  afterEach(() => transport.close());

  it("GETs a cluster shaped like the real response, with the flattened model the SDK exposes", async () => {
    const cluster = await aks.managedClusters.get(RESOURCE_GROUP, "aks-local");
    expect(cluster.id).toBe(
      `/subscriptions/${SUBSCRIPTION_ID}/resourcegroups/${RESOURCE_GROUP}/providers/Microsoft.ContainerService/managedClusters/aks-local`,
    );
    expect(cluster.type).toBe("Microsoft.ContainerService/ManagedClusters");
    expect(cluster.fqdn).toBe("aks-local-1a2b3c4d.hcp.eastus.azmk8s.io");
    expect(cluster.azurePortalFqdn).toBe("aks-local-1a2b3c4d.portal.hcp.eastus.azmk8s.io");
    expect(cluster.enableRbac).toBe(true);
    expect(cluster.disableLocalAccounts).toBe(false);
    expect(cluster.networkProfile?.dnsServiceIP).toBe("10.0.0.10");

    const aad = await aks.managedClusters.get(RESOURCE_GROUP, "aks-aad");
    expect(aad.disableLocalAccounts).toBe(true);
    expect(aad.aadProfile).toMatchObject({ managed: true, enableAzureRbac: true, tenantID: emulator.tenantId });
  });

  it("returns user, admin and monitoring kubeconfigs with the server and CA", async () => {
    const user = await aks.managedClusters.listClusterUserCredentials(RESOURCE_GROUP, "aks-local");
    expect(user.kubeconfigs?.[0]?.name).toBe("clusterUser");
    const yaml = decode(user.kubeconfigs?.[0]?.value);
    expect(yaml).toContain(`server: ${API_SERVER}`);
    const caData = /certificate-authority-data: (\S+)/.exec(yaml)?.[1];
    expect(Buffer.from(caData ?? "", "base64").toString("utf8")).toBe(CA_PEM);
    expect(yaml).toMatch(/user:\n {4}client-certificate-data: \S+\n {4}client-key-data: \S+\n {4}token: [0-9a-f]{32}\n/);

    const admin = await aks.managedClusters.listClusterAdminCredentials(RESOURCE_GROUP, "aks-local");
    expect(admin.kubeconfigs?.[0]?.name).toBe("clusterAdmin");
    expect(decode(admin.kubeconfigs?.[0]?.value)).toContain("current-context: aks-local-admin");
    const monitoring = await aks.managedClusters.listClusterMonitoringUserCredentials(RESOURCE_GROUP, "aks-local");
    expect(monitoring.kubeconfigs?.[0]?.name).toBe("clusterMonitoringUser");
    expect(emulator.requests.filter({ method: "POST" }).map((e) => e.route)).toEqual([
      "managedClusters.listClusterUserCredential",
      "managedClusters.listClusterAdminCredential",
      "managedClusters.listClusterMonitoringUserCredential",
    ]);
  });

  it("refuses static credentials when local accounts are disabled but still gives AAD users an exec kubeconfig", async () => {
    await expect(aks.managedClusters.listClusterAdminCredentials(RESOURCE_GROUP, "aks-aad")).rejects.toMatchObject({
      statusCode: 400,
      code: "BadRequest",
      message: "Getting static credential is not allowed because this cluster is set to disable local accounts.",
    });
    await expect(aks.managedClusters.listClusterMonitoringUserCredentials(RESOURCE_GROUP, "aks-aad")).rejects.toMatchObject({
      code: "BadRequest",
    });
    const user = await aks.managedClusters.listClusterUserCredentials(RESOURCE_GROUP, "aks-aad");
    const yaml = decode(user.kubeconfigs?.[0]?.value);
    expect(yaml).toContain("command: kubelogin");
    expect(yaml).toContain("6dae42f8-4368-4678-94ff-3960e28e3630");
    expect(yaml).not.toContain("token:");
  });

  it("answers 404 for a missing cluster or resource group", async () => {
    await expect(aks.managedClusters.get(RESOURCE_GROUP, "nope")).rejects.toMatchObject({ statusCode: 404, code: "ResourceNotFound" });
    await expect(aks.managedClusters.listClusterUserCredentials(RESOURCE_GROUP, "nope")).rejects.toMatchObject({ statusCode: 404 });
    await expect(aks.managedClusters.get("rg-missing", "aks-local")).rejects.toMatchObject({ statusCode: 404, code: "ResourceGroupNotFound" });
  });
});
