/**
 * A role assignment of the same grant that someone else made (an operator's own, say, for monitoring the machine,
 * under their own name) is theirs: the service takes it as the node's access, but never records it as created, and
 * offboarding, compensation and the sweeper never delete it. Only assignments under the service's deterministic name
 * (or made by the service's principal) are the service's — also for a node recorded before that was so.
 */
import { inject } from "vitest";
import { afterEach, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { buildServices } from "../../functions/composition-root.js";
import { createAccessActivities } from "../../orchestrations/activities/access.js";
import { record } from "../../orchestrations/activities/records.js";
import { removeCreatedObject } from "../../orchestrations/activities/removal.js";
import { ArmClients } from "../../orchestrations/clients/arm/arm-clients.js";
import { pathArg } from "../../orchestrations/clients/arm/resource-id.js";
import { Registry } from "../../orchestrations/clients/registry/registry.js";
import type { WorkflowClient } from "../../orchestrations/clients/workflow-client.js";
import { settings } from "../../orchestrations/settings.js";
import { sweep } from "../../orchestrations/use-cases/sweep.js";
import { emulatorCredential } from "../arm-emulator/index.js";
import { admin } from "../function-app/index.js";
import { ARC_RG_ID, CLUSTER_ID, SERVICE_PRINCIPAL, startWorld, SUBSCRIPTION, type World } from "./world.js";

let world: World;
afterEach(async () => {
  await world.close();
});
const OPERATOR = "0badc0de-0000-4000-8000-000000000001";
const READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7";
const registry = () => new Registry({ connectionString: inject("azuriteConnectionString"), prefix: world.app.prefix });
const operator = () => new ArmClients({ credential: emulatorCredential(OPERATOR), httpClient: world.arm.httpClient, retryOptions: { maxRetries: 0 } });
const services = () =>
  buildServices(settings(), {
    arm: new ArmClients({ credential: emulatorCredential(SERVICE_PRINCIPAL), httpClient: world.arm.httpClient, retryOptions: { maxRetries: 0 } }),
    credential: emulatorCredential(SERVICE_PRINCIPAL),
    mailbox: world.mailbox,
  });

/** The operator grants Reader on the Arc resource group to `principalId`, under a name of their own. */
async function operatorsGrant(principalId: string): Promise<string> {
  const id = `${ARC_RG_ID}/providers/Microsoft.Authorization/roleAssignments/${randomUUID()}`;
  await operator()
    .authorization(SUBSCRIPTION)
    .roleAssignments.createById(pathArg(id), {
      roleDefinitionId: `/subscriptions/${SUBSCRIPTION}/providers/Microsoft.Authorization/roleDefinitions/${READER}`,
      principalId,
      principalType: "ServicePrincipal",
    });
  return id;
}

const grantIds = () => world.arm.inspect.roleAssignments().map((r) => r.id.toLowerCase());

describe("role assignments someone else made for the node's grant", () => {
  it("an operator's own grant to an adopted machine is the node's access, not recorded as created, and offboarding leaves it", async () => {
    world = await startWorld();
    const pool = await world.app.call("POST", "/api/manage/pools", {
      headers: admin,
      body: {
        name: "byo",
        clusterResourceId: CLUSTER_ID,
        arc: { resourceGroupId: ARC_RG_ID, location: "eastus", mode: "adopt" },
        roleGrants: [{ roleDefinitionId: READER, scope: "arcResourceGroup" }],
      },
    });
    expect(pool.status).toBe(201);
    const { nodeId } = await world.enrol({ pool: "byo" });
    await world.app.simulator.runUntilIdle();
    // azcmagent creates the machine; the operator grants its identity Reader before the service sees it.
    const machineId = `${ARC_RG_ID}/providers/Microsoft.HybridCompute/machines/edge-host-17`;
    const machine = await operator()
      .resources(SUBSCRIPTION)
      .resources.beginCreateOrUpdateByIdAndWait(
        pathArg(machineId),
        "2025-01-13",
        {
          location: "eastus",
          identity: { type: "SystemAssigned" },
          tags: { "flexnode-pool": "byo", "flexnode-node": nodeId },
          properties: { osType: "linux" },
        },
        { updateIntervalInMs: 1 },
      );
    const own = await operatorsGrant(machine.identity!.principalId!);
    const written = world.arm.events.published.filter((e) => e.eventType === "Microsoft.Resources.ResourceWriteSuccess" && e.data.resourceUri === machineId);
    await world.app.host.invoke("machineEvents", { string: JSON.stringify(written[0]) });
    expect((await world.settle(nodeId)).output).toEqual({ status: "Ready" });
    expect((await registry().nodes.get(nodeId))!.createdObjects.filter((r) => r.startsWith("roleAssignment:"))).toEqual([]);

    expect((await world.app.call("POST", `/api/manage/nodes/${nodeId}/decommission`, { headers: admin })).status).toBe(202);
    expect((await world.settle(`${nodeId}:offboard`)).output).toMatchObject({ remaining: [] });
    expect(grantIds()).toContain(own.toLowerCase());
    expect((await registry().nodes.get(nodeId))!.status).toBe("Offboarded");
  }, 60_000);

  it("a node recorded before grants were told apart: removal drops someone else's assignment from the record and leaves it; the sweeper takes it for no orphan", async () => {
    world = await startWorld();
    const { nodeId } = await world.enrol();
    const svc = services();
    const principalId = randomUUID();
    const own = await operatorsGrant(principalId);
    // What grantRole used to record on RoleAssignmentExists: the operator's assignment, as the node's created object.
    const theirs = { kind: "roleAssignment", id: own } as const;
    await record(svc.registry, nodeId, theirs, "add");
    // And a grant the service did make for the node, under its own name.
    const ours = await createAccessActivities(svc).grantRole({ nodeId, scope: CLUSTER_ID, roleDefinitionGuid: READER, principalId });
    expect(ours).not.toBeNull();
    await svc.registry.nodes.update({ pool: "edge", nodeId }, () => ({ status: "Failed" }), "test", null);

    const none: WorkflowClient = { start: async () => {}, status: async () => undefined, terminate: async () => {}, describe: async () => undefined };
    const report = await sweep({ ...svc, now: () => new Date(world.clock.now()) }, none, {
      sagaDeadlineMs: 30 * 60_000,
      removeOrphans: false,
      claimRetentionMs: 1,
    });
    expect(report.orphans.map((o) => o.ref.toLowerCase())).toEqual([`roleassignment:${ours!.id.toLowerCase()}`]);

    for (const o of [theirs, ours!]) expect(await removeCreatedObject(svc, nodeId, o)).toEqual({ done: true });
    expect(grantIds()).toContain(own.toLowerCase());
    expect(grantIds()).not.toContain(ours!.id.toLowerCase());
    expect((await registry().nodes.get(nodeId))!.createdObjects.filter((r) => r.startsWith("roleAssignment:"))).toEqual([]);
  }, 60_000);

  it("grantRole answers null on RoleAssignmentExists and records nothing", async () => {
    world = await startWorld();
    const { nodeId } = await world.enrol();
    const svc = services();
    const principalId = randomUUID();
    await operatorsGrant(principalId);
    expect(await createAccessActivities(svc).grantRole({ nodeId, scope: ARC_RG_ID, roleDefinitionGuid: READER, principalId })).toBeNull();
    expect((await registry().nodes.get(nodeId))!.createdObjects.filter((r) => r.startsWith("roleAssignment:"))).toEqual([]);
  }, 60_000);
});
