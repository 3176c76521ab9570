import type { IncomingMessage } from "node:http";
import https from "node:https";
import { AuthorizationManagementClient } from "@azure/arm-authorization";
import { ContainerServiceClient } from "@azure/arm-containerservice";
import { HybridComputeManagementClient } from "@azure/arm-hybridcompute";
import { ResourceManagementClient } from "@azure/arm-resources";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { ArmEmulator } from "./arm-emulator.js";
import { emulatorToken } from "./credential.js";
import type { ListeningEmulator } from "./https-server.js";
import { BUILT_IN_ROLES, roleDefinitionId } from "./role-definitions.js";
import { machineBody, machineId, newEmulator, RESOURCE_GROUP, RG_SCOPE, SERVICE_PRINCIPAL_ID, serviceCredential, SUBSCRIPTION_ID } from "./test-fixtures.js";
import { pathArg } from "../../orchestrations/clients/arm/resource-id.js";

describe("HTTPS transport", () => {
  let emulator: ArmEmulator;
  let server: ListeningEmulator;

  beforeEach(async () => {
    emulator = newEmulator().emulator;
    emulator.addCluster({ subscriptionId: SUBSCRIPTION_ID, resourceGroup: RESOURCE_GROUP, name: "aks" });
    server = await emulator.listen({ tls: true });
  });
  afterEach(() => server.close());

  it("serves all four SDK packages with tlsOptions.ca on a loopback port", async () => {
    expect(server.endpoint).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(server.ca).toContain("BEGIN CERTIFICATE");
    const options = { endpoint: server.endpoint, tlsOptions: { ca: server.ca! } };

    const rm = new ResourceManagementClient(serviceCredential, SUBSCRIPTION_ID, options);
    const machine = await rm.resources.beginCreateOrUpdateByIdAndWait(pathArg(machineId("n1")), "2025-01-13", machineBody(), { updateIntervalInMs: 1 });
    const hc = new HybridComputeManagementClient(serviceCredential, SUBSCRIPTION_ID, options);
    expect((await hc.machines.get(RESOURCE_GROUP, "n1")).identity?.principalId).toBe(machine.identity?.principalId);
    const authz = new AuthorizationManagementClient(serviceCredential, SUBSCRIPTION_ID, options);
    await authz.roleAssignments.create(pathArg(RG_SCOPE), "0f000000-0000-4000-8000-000000000001", {
      roleDefinitionId: roleDefinitionId(BUILT_IN_ROLES.Reader, SUBSCRIPTION_ID),
      principalId: machine.identity!.principalId!,
      principalType: "ServicePrincipal",
    });
    const aks = new ContainerServiceClient(serviceCredential, SUBSCRIPTION_ID, options);
    expect((await aks.managedClusters.get(RESOURCE_GROUP, "aks")).name).toBe("aks");

    expect(emulator.requests.entries.map((e) => `${e.route} ${e.status}`)).toEqual([
      "machines.put 200",
      "machines.get 200",
      "roleAssignments.put 201",
      "managedClusters.get 200",
    ]);
  });

  it("points LRO monitor URLs back at the server's origin", async () => {
    const rm = new ResourceManagementClient(serviceCredential, SUBSCRIPTION_ID, server.clientOptions());
    await rm.resources.beginCreateOrUpdateByIdAndWait(pathArg(machineId("n2")), "2025-01-13", machineBody(), { updateIntervalInMs: 1 });
    const accepted = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = https.request(
        `${server.endpoint}${machineId("n2")}?api-version=2025-01-13`,
        { method: "DELETE", ca: server.ca, headers: { authorization: `Bearer ${emulatorToken(SERVICE_PRINCIPAL_ID)}` } },
        (res) => {
          res.resume();
          resolve(res);
        },
      );
      req.on("error", reject);
      req.end();
    });
    expect(accepted.statusCode).toBe(202);
    expect(accepted.headers["azure-asyncoperation"]).toMatch(new RegExp(`^${server.endpoint}/subscriptions/`));
    expect(accepted.headers["location"]).toMatch(new RegExp(`^${server.endpoint}/subscriptions/`));
  });

  it("is refused by a client that does not trust its certificate", async () => {
    const hc = new HybridComputeManagementClient(serviceCredential, SUBSCRIPTION_ID, { endpoint: server.endpoint, retryOptions: { maxRetries: 0 } });
    await expect(hc.machines.get(RESOURCE_GROUP, "n1")).rejects.toMatchObject({
      name: "RestError",
      message: expect.stringMatching(/self[- ]signed/i) as unknown,
    });
    expect(emulator.requests.entries).toEqual([]);
  });

  it("can serve plain HTTP, which the SDK's bearer policy refuses to use", async () => {
    const plain = await emulator.listen({ tls: false });
    try {
      expect(plain.ca).toBeUndefined();
      const hc = new HybridComputeManagementClient(serviceCredential, SUBSCRIPTION_ID, plain.clientOptions());
      await expect(hc.machines.get(RESOURCE_GROUP, "n1")).rejects.toThrow(
        "Bearer token authentication is not permitted for non-TLS protected (non-https) URLs.",
      );
    } finally {
      await plain.close();
    }
  });
});
