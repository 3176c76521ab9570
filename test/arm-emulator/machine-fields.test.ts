/**
 * Issue 13 item 5: Arc machine fields as published for 2025-01-13 — the request and response of
 * azure-rest-api-specs specification/hybridcompute/resource-manager/Microsoft.HybridCompute/stable/2025-01-13/examples/
 * machine/Machines_CreateOrUpdate.json (commit 3c97ef6186f1114b5095e5c8c2e4bcd81fed07c3), and the schema in
 * HybridCompute.json (commit 0fab7d2318277308e6ac552937b07dc68d30c30d): status is Connected | Disconnected | Error, or
 * null before an agent connects; only writable properties may be sent.
 */
import { ResourceManagementClient } from "@azure/arm-resources";
import { describe, expect, it } from "vitest";
import { ArmClients } from "../../orchestrations/clients/arm/arm-clients.js";
import { pathArg } from "../../orchestrations/clients/arm/resource-id.js";
import { createArcActivities } from "../../orchestrations/activities/arc.js";
import { NO_RETRIES } from "./sdk-transport.js";
import { machineId, newEmulator, serviceCredential, SUBSCRIPTION_ID } from "./test-fixtures.js";

/** The example's request body, as published (only the resource group is the emulator's). */
const PUBLISHED_REQUEST = {
  location: "eastus2euap",
  properties: {
    vmId: "b7a098cc-b0b8-46e8-a205-62f301a62a8f",
    locationData: { name: "Redmond" },
    osProfile: { windowsConfiguration: { patchSettings: { enableHotpatching: true } } },
    clientPublicKey: "string",
    parentClusterResourceId: "{AzureStackHCIResourceId}",
    privateLinkScopeResourceId: `/subscriptions/${SUBSCRIPTION_ID}/resourceGroups/rg-flex/providers/Microsoft.HybridCompute/privateLinkScopes/privateLinkScopeName`,
  },
  identity: { type: "SystemAssigned" as const },
};

describe("Arc machine fields as published", () => {
  it("accepts the published request and answers the published agentless state: status, agentVersion and lastStatusChange null", async () => {
    const { emulator } = newEmulator();
    const rm = new ResourceManagementClient(serviceCredential, SUBSCRIPTION_ID, { ...emulator.clientOptions(), ...NO_RETRIES });
    const machine = await rm.resources.beginCreateOrUpdateByIdAndWait(pathArg(machineId("myMachine")), "2025-01-13", PUBLISHED_REQUEST);
    expect(machine.properties).toMatchObject({
      provisioningState: "Succeeded",
      status: null,
      agentVersion: null,
      lastStatusChange: null,
      vmId: PUBLISHED_REQUEST.properties.vmId,
    });
    emulator.setMachineStatus(machineId("myMachine"), "Connected", "1.50.0");
    expect(emulator.inspect.machines()[0]?.status).toBe("Connected");
    expect(() => emulator.setMachineStatus(machineId("myMachine"), "AwaitingConnection" as "Connected")).toThrow(/not a machine status/);
  });

  it("refuses read-only, unknown and create-only properties, and PATCH outside MachineUpdateProperties", async () => {
    const { emulator } = newEmulator();
    const rm = new ResourceManagementClient(serviceCredential, SUBSCRIPTION_ID, { ...emulator.clientOptions(), ...NO_RETRIES });
    const id = pathArg(machineId("m1"));
    const put = (properties: Record<string, unknown>, kind?: string) =>
      rm.resources.beginCreateOrUpdateByIdAndWait(id, "2025-01-13", { location: "eastus", identity: { type: "SystemAssigned" }, kind, properties });
    for (const [properties, kind, message] of [
      [{ osType: "linux", status: "Connected" }, undefined, /'properties.status' is read-only/],
      [{ provisioningState: "Succeeded" }, undefined, /'properties.provisioningState' is read-only/],
      [{ agentVersion: "1.0" }, undefined, /read-only/],
      [{ osTypo: "linux" }, undefined, /'properties.osTypo' is not a property/],
      [{ osType: "linux" }, "Linux", /'kind' is not one of/],
    ] as const) {
      await expect(put(properties, kind)).rejects.toMatchObject({ statusCode: 400, code: "InvalidRequestContent", message: expect.stringMatching(message) });
    }
    expect(emulator.inspect.machines()).toEqual([]);
    await put({ osType: "linux", vmId: "0b0c7a55-0000-4000-8000-000000000001" });
    await expect(put({ osType: "linux", vmId: "0b0c7a55-0000-4000-8000-000000000002" })).rejects.toMatchObject({ statusCode: 400 });
    const patch = await emulator.handle({
      method: "PATCH",
      url: `${machineId("m1")}?api-version=2025-01-13`,
      headers: { authorization: `Bearer ${(await serviceCredential.getToken([]))!.token}` },
      body: JSON.stringify({ properties: { osType: "windows" } }),
    });
    expect(patch).toMatchObject({ status: 400, body: { error: { code: "InvalidRequestContent" } } });
  });

  it("takes the service's own machine PUT: it writes only writable properties", async () => {
    const { emulator } = newEmulator({ replicationDelayMs: 0 });
    const arm = new ArmClients({ credential: serviceCredential, ...emulator.clientOptions(), ...NO_RETRIES });
    // No node on record: record() leaves the registry alone, which is all this test needs of it.
    const registry = { nodes: { get: async () => undefined, recent: () => undefined } } as unknown as Parameters<typeof createArcActivities>[0]["registry"];
    const acts = createArcActivities({ arm: () => arm, registry });
    const { machine, principalId } = await acts.putArcMachine({
      context: {
        nodeId: "fn-1",
        pool: "edge",
        arc: { resourceGroupId: `/subscriptions/${SUBSCRIPTION_ID}/resourceGroups/rg-flex`, location: "eastus", tags: {} },
      } as unknown as Parameters<typeof acts.putArcMachine>[0]["context"],
    });
    expect(machine.id).toMatch(/machines\/fn-1$/);
    expect(principalId).toMatch(/^[0-9a-f-]{36}$/);
  });
});
