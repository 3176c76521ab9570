/**
 * A pool may not grant its nodes' identities a privileged built-in role (Owner, Contributor, User Access
 * Administrator, Role Based Access Control Administrator): the service's ABAC condition would let it hand the role
 * out, and a node holding it could take over the pool's cluster or Arc resource group. Pool creation and update refuse
 * such roleGrants as a validation problem naming the field (pool.bicep refuses the same list at deployment); a narrower
 * role is still accepted.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ArmClients } from "../../orchestrations/clients/arm/arm-clients.js";
import { ArmEmulator, emulatorCredential } from "../arm-emulator/index.js";
import { admin, ARC_RG, CLUSTER_ID, startApp, type TestApp, useStandInSaga } from "../function-app/index.js";
import { ManualClock } from "../support/index.js";

useStandInSaga();

let app: TestApp;
beforeAll(async () => {
  app = await startApp();
  // A pool with grants is checked against ARM's role-assignment cap at creation: an empty subscription has room.
  const arm = new ArmEmulator({
    clock: new ManualClock(),
    throttling: false,
    resourceGroups: [
      { subscriptionId: "00000000-0000-4000-8000-000000000001", name: "rg-aks" },
      { subscriptionId: "00000000-0000-4000-8000-000000000001", name: "rg-arc" },
    ],
  });
  app.useServices({
    arm: new ArmClients({
      credential: emulatorCredential("5e1f0000-0000-4000-8000-0000000000c1"),
      httpClient: arm.httpClient,
      retryOptions: { maxRetries: 0 },
    }),
  });
});
afterAll(async () => {
  await app.close();
});

const PRIVILEGED: [string, string][] = [
  ["Owner", "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"],
  ["Contributor", "b24988ac-6180-42a0-ab88-20f7382dd24c"],
  ["User Access Administrator", "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9"],
  ["Role Based Access Control Administrator", "F58310D9-A9F6-439A-9E8D-F62E7B41A168"],
];
const AKS_CLUSTER_USER = "4abbcc35-e782-43d8-92c5-2d3f1bd2253f";

const spec = (roleGrants: unknown[]) => ({ clusterResourceId: CLUSTER_ID, arc: { resourceGroupId: ARC_RG, location: "eastus" }, roleGrants });
const grants = (guid: string) => [
  { roleDefinitionId: AKS_CLUSTER_USER, scope: "cluster" },
  { roleDefinitionId: guid, scope: "arcResourceGroup" },
];

function expectRefused(res: { status: number; headers: Record<string, string>; json: unknown }, role: string): void {
  const body = res.json as { type: string; errors: { path: string; message: string }[] };
  expect([res.status, res.headers["content-type"], body.type]).toEqual([422, "application/problem+json", "https://flexnode.dev/problems/validation-failed"]);
  expect(body.errors).toEqual([{ path: "/roleGrants/1/roleDefinitionId", message: expect.stringMatching(new RegExp(`^${role} is a privileged role`)) }]);
}

describe("privileged roles in a pool's roleGrants", () => {
  it.each(PRIVILEGED)("pool creation refuses %s, naming the field; nothing is stored", async (role, guid) => {
    const before = await app.snapshot();
    expectRefused(await app.call("POST", "/api/manage/pools", { headers: admin, body: { name: "refused", ...spec(grants(guid)) } }), role);
    expect(await app.snapshot()).toBe(before);
  });

  it.each(PRIVILEGED)("pool update refuses %s, naming the field; the pool is unchanged", async (role, guid) => {
    const name = `upd-${PRIVILEGED.findIndex(([r]) => r === role)}`;
    expect((await app.createPool(name, { roleGrants: [{ roleDefinitionId: AKS_CLUSTER_USER, scope: "cluster" }] })).status).toBe(201);
    const before = await app.snapshot();
    expectRefused(await app.call("PUT", `/api/manage/pools/${name}`, { headers: admin, body: spec(grants(guid)) }), role);
    expect(await app.snapshot()).toBe(before);
  });

  it("accepts a narrower role", async () => {
    const res = await app.createPool("narrow", { roleGrants: grants("acdd72a7-3385-48ef-bd42-f606fba81ae7") });
    expect(res.status).toBe(201);
  });
});
