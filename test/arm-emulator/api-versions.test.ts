/**
 * Issue 13 item 1: each resource type answers only the api-versions Azure publishes for it (lists and sources in
 * published-api-versions.ts), with the errors ARM gives: `NoRegisteredProviderFound` from a resource provider (wording
 * as in the errors quoted in Azure/azure-cli#28496 and Azure/azure-sdk-for-js#4097), `InvalidApiVersionParameter` for
 * ARM's own resource groups.
 */
import { ResourceManagementClient } from "@azure/arm-resources";
import { describe, expect, it } from "vitest";
import { API_VERSIONS } from "../../orchestrations/clients/arm/arm-clients.js";
import { publishedTypeOf } from "./published-api-versions.js";
import { NO_RETRIES } from "./sdk-transport.js";
import { machineBody, machineId, newEmulator, serviceCredential, SUBSCRIPTION_ID } from "./test-fixtures.js";
import { pathArg } from "../../orchestrations/clients/arm/resource-id.js";

describe("api-versions per resource type", () => {
  it("refuses a well-formed api-version no one published, for a machine and for a resource group", async () => {
    const { emulator } = newEmulator();
    const resources = new ResourceManagementClient(serviceCredential, SUBSCRIPTION_ID, { ...emulator.clientOptions(), ...NO_RETRIES });
    for (const invented of ["2099-01-01", "2025-01-13-preview"]) {
      await expect(resources.resources.beginCreateOrUpdateByIdAndWait(pathArg(machineId("m1")), invented, machineBody())).rejects.toMatchObject({
        statusCode: 400,
        code: "NoRegisteredProviderFound",
        message: expect.stringMatching(new RegExp(`API version '${invented}' for type 'machines'. The supported api-versions are '.*2025-01-13.*'`)),
      });
    }
    await expect(resources.resourceGroups.get("rg-flex", { requestOptions: {} })).resolves.toMatchObject({ name: "rg-flex" });
    const raw = await emulator.handle({
      method: "GET",
      url: `https://management.azure.com/subscriptions/${SUBSCRIPTION_ID}/resourceGroups/rg-flex?api-version=2099-01-01`,
      headers: { authorization: `Bearer ${(await serviceCredential.getToken("https://management.azure.com/.default"))!.token}` },
    });
    expect(raw).toMatchObject({ status: 400, body: { error: { code: "InvalidApiVersionParameter" } } });
    expect(emulator.inspect.machines()).toEqual([]);
  });

  it("accepts every api-version in the service's table for its resource type", () => {
    const route = {
      "Microsoft.HybridCompute/machines": "machines.put",
      "Microsoft.ContainerService/managedClusters": "managedClusters.get",
      "Microsoft.Authorization/roleAssignments": "roleAssignments.put",
    } as const;
    for (const [type, version] of Object.entries(API_VERSIONS)) {
      const published = publishedTypeOf(route[type as keyof typeof route]);
      expect(published?.type).toBe(type);
      expect(published?.versions).toContain(version);
    }
  });
});
