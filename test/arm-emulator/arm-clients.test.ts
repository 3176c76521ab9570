/** The service's own ArmClients factory (orchestrations/clients/arm) against the emulator, over both transports. */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { API_VERSIONS, ArmClients } from "../../orchestrations/clients/arm/arm-clients.js";
import { ARC_MACHINES, MANAGED_CLUSTERS, pathArg } from "../../orchestrations/clients/arm/resource-id.js";
import type { ArmEmulator } from "./arm-emulator.js";
import { BUILT_IN_ROLES, roleDefinitionId } from "./role-definitions.js";
import { NO_RETRIES, openTransport, TRANSPORTS, type ArmTransport } from "./sdk-transport.js";
import { RESOURCE_GROUP, RG_SCOPE, SUBSCRIPTION_ID, machineBody, machineId, newEmulator, serviceCredential } from "./test-fixtures.js";

const OTHER_SUBSCRIPTION = "00000000-0000-4000-8000-000000000002";

describe.each(TRANSPORTS)("ArmClients over %s", (kind) => {
  let emulator: ArmEmulator;
  let transport: ArmTransport;
  let clients: ArmClients;

  beforeEach(async () => {
    ({ emulator } = newEmulator({ replicationDelayMs: 0 }));
    emulator.addResourceGroup(OTHER_SUBSCRIPTION, "rg-other", "westeurope");
    emulator.addCluster({
      subscriptionId: SUBSCRIPTION_ID,
      resourceGroup: RESOURCE_GROUP,
      name: "aks-1",
      location: "eastus",
      fqdn: "aks-1.hcp.eastus.azmk8s.io",
    });
    transport = await openTransport(emulator, kind);
    clients = new ArmClients({ credential: serviceCredential, ...transport.options, ...NO_RETRIES });
  });
  afterEach(() => transport.close());

  it("builds each client once per subscription", () => {
    expect(clients.authorization(SUBSCRIPTION_ID)).toBe(clients.authorization(SUBSCRIPTION_ID.toUpperCase()));
    expect(clients.authorization(OTHER_SUBSCRIPTION)).not.toBe(clients.authorization(SUBSCRIPTION_ID));
    expect(clients.resources(SUBSCRIPTION_ID)).toBe(clients.resources(SUBSCRIPTION_ID));
  });

  it("creates a machine at the pinned api-version, grants a role to its identity, and reads the cluster", async () => {
    const machine = await clients
      .resources(SUBSCRIPTION_ID)
      .resources.beginCreateOrUpdateByIdAndWait(pathArg(machineId("node-1")), API_VERSIONS[ARC_MACHINES], machineBody(), { updateIntervalInMs: 1 });
    const principalId = machine.identity?.principalId;
    expect(principalId).toMatch(/^[0-9a-f-]{36}$/);

    const read = await clients.hybridCompute(SUBSCRIPTION_ID).machines.get(RESOURCE_GROUP, "node-1");
    expect(read.identity?.principalId).toBe(principalId);

    const grant = await clients.authorization(SUBSCRIPTION_ID).roleAssignments.create(pathArg(RG_SCOPE), "6f1a0000-0000-4000-8000-000000000001", {
      roleDefinitionId: roleDefinitionId(BUILT_IN_ROLES.Reader, SUBSCRIPTION_ID),
      principalId: principalId!,
      principalType: "ServicePrincipal",
    });
    expect(grant.principalId).toBe(principalId);

    const cluster = await clients.containerService(SUBSCRIPTION_ID).managedClusters.get(RESOURCE_GROUP, "aks-1");
    expect(cluster.fqdn).toBe("aks-1.hcp.eastus.azmk8s.io");
    const aksRequest = emulator.requests.filter({ method: "GET" }).find((e) => /managedClusters\/aks-1$/i.test(e.path));
    expect(aksRequest?.apiVersion).toBe(API_VERSIONS[MANAGED_CLUSTERS]);
  });
});
