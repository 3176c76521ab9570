import { HybridComputeManagementClient } from "@azure/arm-hybridcompute";
import { ResourceManagementClient } from "@azure/arm-resources";
import { AuthorizationManagementClient } from "@azure/arm-authorization";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { ArmEmulator } from "./arm-emulator.js";
import { emulatorCredential } from "./credential.js";
import { BUILT_IN_ROLES, roleDefinitionId } from "./role-definitions.js";
import { NO_RETRIES, openTransport, TRANSPORTS, type ArmTransport } from "./sdk-transport.js";
import { machineBody, machineId, newEmulator, RESOURCE_GROUP, RG_SCOPE, SERVICE_PRINCIPAL_ID, serviceCredential, SUBSCRIPTION_ID } from "./test-fixtures.js";
import { pathArg } from "../../orchestrations/clients/arm/resource-id.js";

const LRO = { updateIntervalInMs: 1 };

describe.each(TRANSPORTS)("HybridCompute machines over %s", (kind) => {
  let emulator: ArmEmulator;
  let transport: ArmTransport;
  let resources: ResourceManagementClient;
  let hybrid: HybridComputeManagementClient;

  beforeEach(async () => {
    emulator = newEmulator().emulator;
    transport = await openTransport(emulator, kind);
    resources = new ResourceManagementClient(serviceCredential, SUBSCRIPTION_ID, { ...transport.options, ...NO_RETRIES });
    hybrid = new HybridComputeManagementClient(serviceCredential, SUBSCRIPTION_ID, { ...transport.options, ...NO_RETRIES });
  });
  afterEach(() => transport.close());

  it("PUTs a machine synchronously with 200 and an identity, and keeps the principal across re-PUTs", async () => {
    const id = machineId("node-01");
    const created = await resources.resources.beginCreateOrUpdateByIdAndWait(pathArg(id), "2025-01-13", machineBody({ pool: "a" }), LRO);
    const principalId = created.identity?.principalId;
    expect(principalId).toMatch(/^[0-9a-f-]{36}$/);
    expect(created.identity?.tenantId).toBe(emulator.tenantId);
    expect(created.properties).toMatchObject({ provisioningState: "Succeeded", status: null, agentVersion: null, osType: "linux" });
    expect(created.tags).toEqual({ pool: "a" });

    const updated = await resources.resources.beginCreateOrUpdateByIdAndWait(pathArg(id), "2025-01-13", machineBody({ pool: "b" }), LRO);
    expect(updated.identity?.principalId).toBe(principalId);
    expect(updated.tags).toEqual({ pool: "b" });

    const puts = emulator.requests.filter({ route: "machines.put" });
    expect(puts.map((e) => e.status)).toEqual([200, 200]);
    // Body mode LRO: a 200 with provisioningState Succeeded needs no polling at all.
    expect(emulator.requests.entries).toHaveLength(2);
  });

  it("polls an api 2025-01-13 DELETE to completion and then answers 404", async () => {
    const id = machineId("node-02");
    await resources.resources.beginCreateOrUpdateByIdAndWait(pathArg(id), "2025-01-13", machineBody(), LRO);
    emulator.requests.clear();

    await resources.resources.beginDeleteByIdAndWait(pathArg(id), "2025-01-13", LRO);

    const trace = emulator.requests.entries.map((e) => `${e.method} ${e.route ?? e.path} ${e.status}`);
    expect(trace).toEqual(["DELETE machines.delete 202", "GET machines.operationStatus 200", "GET machines.operationStatus 200"]);
    const polls = emulator.requests.filter({ route: "machines.operationStatus" });
    expect(polls.every((p) => p.apiVersion === "2025-01-13")).toBe(true);
    expect(emulator.inspect.machines()).toEqual([]);

    const error = await hybrid.machines.get(RESOURCE_GROUP, "node-02").catch((e: unknown) => e);
    expect(error).toMatchObject({ statusCode: 404, code: "ResourceNotFound" });
    expect((error as Error).message).toContain("Microsoft.HybridCompute/machines/node-02");
  });

  it("deletes synchronously with 200 on api 2024-07-10", async () => {
    const id = machineId("node-03");
    await resources.resources.beginCreateOrUpdateByIdAndWait(pathArg(id), "2024-07-10", machineBody(), LRO);
    emulator.requests.clear();
    await resources.resources.beginDeleteByIdAndWait(pathArg(id), "2024-07-10", LRO);
    expect(emulator.requests.entries.map((e) => [e.method, e.status])).toEqual([["DELETE", 200]]);
    expect(emulator.inspect.machines()).toEqual([]);
  });

  it("serves @azure/arm-hybridcompute 3.0.0 get, listByResourceGroup and delete (api 2021-05-20)", async () => {
    for (const name of ["node-a", "node-b"]) {
      await resources.resources.beginCreateOrUpdateByIdAndWait(pathArg(machineId(name)), "2025-01-13", machineBody(), LRO);
    }
    const got = await hybrid.machines.get(RESOURCE_GROUP, "node-a");
    expect(got.id).toBe(machineId("node-a"));
    expect(got.properties?.provisioningState).toBe("Succeeded");
    expect(got.identity?.principalId).toBe(emulator.inspect.machines().find((m) => m.name === "node-a")?.principalId);

    const listed: string[] = [];
    for await (const m of hybrid.machines.listByResourceGroup(RESOURCE_GROUP)) listed.push(m.name ?? "");
    expect(listed.sort()).toEqual(["node-a", "node-b"]);

    await hybrid.machines.delete(RESOURCE_GROUP, "node-a");
    await hybrid.machines.delete(RESOURCE_GROUP, "node-a");
    expect(emulator.requests.filter({ route: "machines.delete" }).map((e) => e.status)).toEqual([200, 204]);
    expect(emulator.requests.filter({ route: "machines.get" })[0]?.apiVersion).toBe("2021-05-20");
  });
});

describe("HybridCompute machine lifecycle", () => {
  let emulator: ArmEmulator;
  let resources: ResourceManagementClient;

  beforeEach(() => {
    emulator = newEmulator().emulator;
    resources = new ResourceManagementClient(serviceCredential, SUBSCRIPTION_ID, { ...emulator.clientOptions(), ...NO_RETRIES });
  });

  it("gives a re-created machine a new principal and leaves the old role assignments behind as orphans", async () => {
    const id = machineId("node-10");
    const first = await resources.resources.beginCreateOrUpdateByIdAndWait(pathArg(id), "2025-01-13", machineBody(), LRO);
    const oldPrincipal = first.identity!.principalId!;
    const authz = new AuthorizationManagementClient(serviceCredential, SUBSCRIPTION_ID, emulator.clientOptions());
    await authz.roleAssignments.create(pathArg(RG_SCOPE), "6b1d2c3e-0000-4000-8000-000000000010", {
      roleDefinitionId: roleDefinitionId(BUILT_IN_ROLES.Reader, SUBSCRIPTION_ID),
      principalId: oldPrincipal,
      principalType: "ServicePrincipal",
    });

    await resources.resources.beginDeleteByIdAndWait(pathArg(id), "2025-01-13", LRO);
    const second = await resources.resources.beginCreateOrUpdateByIdAndWait(pathArg(id), "2025-01-13", machineBody(), LRO);

    expect(second.identity?.principalId).not.toBe(oldPrincipal);
    expect(emulator.inspect.deletedPrincipals()).toEqual([oldPrincipal]);
    const [orphan] = emulator.inspect.roleAssignmentsFor(oldPrincipal);
    expect(orphan).toMatchObject({ scope: RG_SCOPE, orphaned: true });
    const stillListed = await authz.roleAssignments.get(pathArg(RG_SCOPE), "6b1d2c3e-0000-4000-8000-000000000010");
    expect(stillListed.principalId).toBe(oldPrincipal);
  });

  it("validates the PUT: location required, name pattern, resource group must exist", async () => {
    const noLocation = { identity: { type: "SystemAssigned" as const } };
    await expect(resources.resources.beginCreateOrUpdateByIdAndWait(pathArg(machineId("node-11")), "2025-01-13", noLocation, LRO)).rejects.toMatchObject({
      statusCode: 400,
      code: "LocationRequired",
    });
    await expect(resources.resources.beginCreateOrUpdateByIdAndWait(pathArg(machineId("bad name!")), "2025-01-13", machineBody(), LRO)).rejects.toMatchObject({
      statusCode: 400,
      code: "InvalidResourceName",
    });
    const elsewhere = `/subscriptions/${SUBSCRIPTION_ID}/resourceGroups/rg-missing/providers/Microsoft.HybridCompute/machines/node-12`;
    await expect(resources.resources.beginCreateOrUpdateByIdAndWait(pathArg(elsewhere), "2025-01-13", machineBody(), LRO)).rejects.toMatchObject({
      statusCode: 404,
      code: "ResourceGroupNotFound",
    });
    expect(emulator.inspect.machines()).toEqual([]);
  });

  it("holds tags to ARM's limits on PUT and PATCH: 50 per resource, names up to 512 without < > % & \\ ? /, values up to 256", async () => {
    const put = (name: string, tags: Record<string, string>) =>
      resources.resources.beginCreateOrUpdateByIdAndWait(pathArg(machineId(name)), "2025-01-13", { ...machineBody(), tags }, LRO);
    const fifty = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`t${i}`, "v"]));
    await expect(put("node-t1", fifty)).resolves.toMatchObject({ tags: fifty });
    await expect(put("node-t2", { ...fifty, t50: "v" })).rejects.toMatchObject({ statusCode: 400, code: expect.stringMatching(/^InvalidTag/) });
    for (const name of ["team/owner", "a<b", "50%", "r&d", "back\\slash", "why?"])
      await expect(put("node-t3", { [name]: "v" })).rejects.toMatchObject({ statusCode: 400, code: "InvalidTagNameCharacters" });
    await expect(put("node-t4", { ["n".repeat(513)]: "v" })).rejects.toMatchObject({ statusCode: 400, code: expect.stringMatching(/^InvalidTag/) });
    await expect(put("node-t5", { n: "v".repeat(257) })).rejects.toMatchObject({ statusCode: 400, code: expect.stringMatching(/^InvalidTag/) });
    await expect(put("node-t6", { ["n".repeat(512)]: "v".repeat(256) })).resolves.toBeDefined();
    await expect(resources.resources.beginUpdateByIdAndWait(pathArg(machineId("node-t1")), "2025-01-13", { tags: { "x/y": "v" } }, LRO)).rejects.toMatchObject({
      statusCode: 400,
      code: "InvalidTagNameCharacters",
    });
    expect(
      emulator.inspect
        .machines()
        .map((m) => m.name)
        .sort(),
    ).toEqual(["node-t1", "node-t6"]);
  });

  it("pages list results with nextLink", async () => {
    const paged = newEmulator({ pageSize: 2 }).emulator;
    const rm = new ResourceManagementClient(serviceCredential, SUBSCRIPTION_ID, paged.clientOptions());
    for (let i = 0; i < 5; i++) await rm.resources.beginCreateOrUpdateByIdAndWait(pathArg(machineId(`node-p${i}`)), "2025-01-13", machineBody(), LRO);
    const hybrid = new HybridComputeManagementClient(serviceCredential, SUBSCRIPTION_ID, paged.clientOptions());
    const names: string[] = [];
    for await (const m of hybrid.machines.listBySubscription()) names.push(m.name ?? "");
    expect(names.sort()).toEqual(["node-p0", "node-p1", "node-p2", "node-p3", "node-p4"]);
    const pages = paged.requests.filter({ route: "machines.listBySubscription" });
    expect(pages.map((p) => p.query["$skiptoken"])).toEqual([undefined, "2", "4"]);
  });

  it("keeps a machine Deleting until its delete operation is polled to completion", async () => {
    // The SDK poller sleeps out Retry-After in wall time: 0 here (the realistic 200 s is in the next tests).
    const slow = newEmulator({ machineDelete: { inProgressPolls: 3, retryAfterSeconds: 0 } }).emulator;
    const rm = new ResourceManagementClient(serviceCredential, SUBSCRIPTION_ID, slow.clientOptions());
    const id = machineId("node-13");
    await rm.resources.beginCreateOrUpdateByIdAndWait(pathArg(id), "2025-01-13", machineBody(), LRO);
    const poller = await rm.resources.beginDeleteById(pathArg(id), "2025-01-13", LRO);
    expect(slow.inspect.machines()[0]?.provisioningState).toBe("Deleting");
    expect(slow.inspect.pendingOperations()).toHaveLength(1);
    await poller.pollUntilDone();
    expect(slow.requests.filter({ route: "machines.operationStatus" })).toHaveLength(4);
    expect(slow.inspect.pendingOperations()).toEqual([]);
    expect(slow.inspect.machines()).toEqual([]);
  });

  it("serves the Location monitor: 202 while running, then 204", async () => {
    const token = (await emulatorCredential(SERVICE_PRINCIPAL_ID).getToken([]))!.token;
    const headers = { authorization: `Bearer ${token}` };
    const id = machineId("node-14");
    await emulator.handle({ method: "PUT", url: `${id}?api-version=2025-01-13`, headers, body: JSON.stringify(machineBody()) });
    const accepted = await emulator.handle({ method: "DELETE", url: `https://127.0.0.1:4443${id}?api-version=2025-01-13`, headers });
    expect(accepted.status).toBe(202);
    // As published: azure-rest-api-specs hybridcompute stable/2025-01-13/examples/machine/Machines_Delete.json
    // (commit 0fab7d2318277308e6ac552937b07dc68d30c30d) answers 202 with Retry-After 200.
    expect(accepted.headers["retry-after"]).toBe("200");
    const location = accepted.headers["location"]!;
    expect(location).toMatch(/^https:\/\/127\.0\.0\.1:4443\/subscriptions\/.+\/providers\/Microsoft\.HybridCompute\/locations\/eastus\/operationResults\//);
    expect(accepted.headers["azure-asyncoperation"]).toContain("/operationStatus/");
    expect((await emulator.handle({ method: "GET", url: location, headers })).status).toBe(202);
    expect((await emulator.handle({ method: "GET", url: location, headers })).status).toBe(204);
    const status = await emulator.handle({ method: "GET", url: accepted.headers["azure-asyncoperation"]!, headers });
    expect(status.body).toMatchObject({ status: "Succeeded", startTime: "2030-01-01T00:00:00.000Z", endTime: "2030-01-01T00:00:00.000Z" });
    expect((await emulator.handle({ method: "DELETE", url: `${id}?api-version=2025-01-13`, headers })).status).toBe(204);
  });

  it("runs a delete for runForMs of emulated time however often it is polled, with Retry-After on every running answer", async () => {
    const { emulator: timed, clock } = newEmulator({ machineDelete: { runForMs: 500_000 } });
    const headers = { authorization: `Bearer ${(await serviceCredential.getToken([]))!.token}` };
    const id = machineId("node-16");
    await timed.handle({ method: "PUT", url: `${id}?api-version=2025-01-13`, headers, body: JSON.stringify(machineBody()) });
    const accepted = await timed.handle({ method: "DELETE", url: `${id}?api-version=2025-01-13`, headers });
    expect(accepted).toMatchObject({ status: 202, headers: { "retry-after": "200" } });
    const look = () => timed.handle({ method: "GET", url: accepted.headers["azure-asyncoperation"]!, headers });
    for (let i = 0; i < 5; i++) expect(await look()).toMatchObject({ status: 200, headers: { "retry-after": "200" }, body: { status: "InProgress" } });
    clock.advance(499_999);
    expect((await look()).body).toMatchObject({ status: "InProgress" });
    clock.advance(1);
    expect((await look()).body).toMatchObject({ status: "Succeeded" });
    expect(timed.inspect.machines()).toEqual([]);
  });

  it("publishes Event Grid write and delete events carrying the caller's claims", async () => {
    const seen: string[] = [];
    emulator.events.subscribe((e) => {
      seen.push(e.eventType);
    });
    const id = machineId("node-15");
    await resources.resources.beginCreateOrUpdateByIdAndWait(pathArg(id), "2025-01-13", machineBody({ pool: "p" }), LRO);
    await resources.resources.beginCreateOrUpdateByIdAndWait(pathArg(id), "2025-01-13", machineBody({ pool: "p" }), LRO);
    await resources.resources.beginDeleteByIdAndWait(pathArg(id), "2025-01-13", LRO);

    const [created, updated, deleted] = emulator.events.published;
    expect(created).toMatchObject({
      eventType: "Microsoft.Resources.ResourceWriteSuccess",
      subject: id,
      topic: RG_SCOPE,
      data: { operationName: "Microsoft.HybridCompute/machines/write", resourceProvider: "Microsoft.HybridCompute", status: "Succeeded" },
    });
    expect(created?.data.claims["http://schemas.microsoft.com/identity/claims/objectidentifier"]).toBe(SERVICE_PRINCIPAL_ID);
    expect(created?.data.httpRequest).toBeUndefined();
    expect(updated?.data.httpRequest?.method).toBe("PUT");
    expect(deleted).toMatchObject({
      eventType: "Microsoft.Resources.ResourceDeleteSuccess",
      data: { operationName: "Microsoft.HybridCompute/machines/delete", httpRequest: { method: "DELETE" } },
    });
    await Promise.resolve();
    expect(seen).toEqual(["Microsoft.Resources.ResourceWriteSuccess", "Microsoft.Resources.ResourceWriteSuccess", "Microsoft.Resources.ResourceDeleteSuccess"]);
  });

  it("lists the managed machines by tag in the inspector", async () => {
    await resources.resources.beginCreateOrUpdateByIdAndWait(pathArg(machineId("node-20")), "2025-01-13", machineBody({ "Managed-By": "flexnode" }), LRO);
    await resources.resources.beginCreateOrUpdateByIdAndWait(pathArg(machineId("node-21")), "2025-01-13", machineBody({ other: "x" }), LRO);
    expect(emulator.inspect.resourcesTagged("managed-by", "flexnode")).toEqual([machineId("node-20")]);
    expect(emulator.inspect.resourcesTagged("managed-by", "FlexNode")).toEqual([]);
    emulator.setMachineStatus(machineId("node-21"), "Connected", "1.50.0");
    const hybrid = new HybridComputeManagementClient(serviceCredential, SUBSCRIPTION_ID, emulator.clientOptions());
    const m = await hybrid.machines.get(RESOURCE_GROUP, "node-21");
    expect(m.properties).toMatchObject({ status: "Connected", agentVersion: "1.50.0" });
  });
});
