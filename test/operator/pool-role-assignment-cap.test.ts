/**
 * Pool creation against ARM's role-assignment cap (4,000 per subscription): a pool whose nodes' per-node grants would
 * cross it is refused with a problem that says why, before any node enrols; the ARM emulator holds the subscription's
 * existing assignments and answers the count over the real @azure/arm-authorization client.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ArmClients } from "../../orchestrations/clients/arm/arm-clients.js";
import { ArmEmulator, BUILT_IN_ROLES, emulatorCredential, emulatorToken } from "../arm-emulator/index.js";
import { ManualClock } from "../support/index.js";
import { admin, ARC_RG, CLUSTER_ID, startApp, type TestApp, useStandInSaga } from "../function-app/index.js";

useStandInSaga();

const SUB = "00000000-0000-4000-8000-000000000001";
const OTHER_SUB = "00000000-0000-4000-8000-0000000000f2";
const SERVICE = "5e1f0000-0000-4000-8000-0000000000c1";
const grants = [
  { roleDefinitionId: BUILT_IN_ROLES["Azure Kubernetes Service Cluster User Role"], scope: "cluster" },
  { roleDefinitionId: BUILT_IN_ROLES.Reader, scope: "arcResourceGroup" },
];

let app: TestApp;
let arm: ArmEmulator;

async function assign(subscriptionId: string, rg: string, n: number): Promise<void> {
  const name = `00000000-0000-4000-8000-${n.toString(16).padStart(12, "0")}`;
  const res = await arm.handle({
    method: "PUT",
    url: `/subscriptions/${subscriptionId}/resourceGroups/${rg}/providers/Microsoft.Authorization/roleAssignments/${name}?api-version=2022-04-01`,
    headers: { authorization: `Bearer ${emulatorToken(SERVICE)}` },
    body: JSON.stringify({
      properties: {
        roleDefinitionId: `/subscriptions/${subscriptionId}/providers/Microsoft.Authorization/roleDefinitions/${BUILT_IN_ROLES.Reader}`,
        principalId: name,
        principalType: "ServicePrincipal",
      },
    }),
  });
  if (res.status !== 201) throw new Error(`seeding assignment ${n}: ${res.status}`);
}

beforeAll(async () => {
  app = await startApp();
  arm = new ArmEmulator({
    clock: new ManualClock(),
    throttling: false,
    resourceGroups: [
      { subscriptionId: SUB, name: "rg-aks" },
      { subscriptionId: SUB, name: "rg-arc" },
      { subscriptionId: OTHER_SUB, name: "rg-other" },
    ],
  });
  // 3,985 of the subscription's 4,000 are taken; assignments in another subscription do not count.
  for (let n = 1; n <= 3_985; n++) await assign(SUB, n % 2 ? "rg-aks" : "rg-arc", n);
  for (let n = 5_001; n <= 5_050; n++) await assign(OTHER_SUB, "rg-other", n);
  app.useServices({ arm: new ArmClients({ credential: emulatorCredential(SERVICE), httpClient: arm.httpClient, retryOptions: { maxRetries: 0 } }) });
}, 120_000);
afterAll(async () => {
  await app.close();
});

const create = (name: string, extra: Record<string, unknown>) =>
  app.call("POST", "/api/manage/pools", {
    headers: admin,
    body: { name, clusterResourceId: CLUSTER_ID, arc: { resourceGroupId: ARC_RG, location: "eastus" }, roleGrants: grants, ...extra },
  });

describe("pool creation and ARM's role-assignment cap", () => {
  it("refuses a pool whose nodes' grants would cross the cap, saying how many fit, and creates nothing", async () => {
    const res = await create("too-big", { maxNodes: 10 });
    expect(res.status).toBe(409);
    expect(res.headers["content-type"]).toBe("application/problem+json");
    expect(res.json).toMatchObject({
      type: "https://flexnode.dev/problems/role-assignment-cap",
      subscriptionId: SUB,
      existingRoleAssignments: 3_985,
      grantsPerNode: 2,
      nodes: 10,
      limit: 4_000,
      maxNodesThatFit: 7,
    });
    expect((res.json as { detail: string }).detail).toContain("RoleAssignmentLimitExceeded");
    expect((await app.call("GET", "/api/manage/pools/too-big", { headers: admin })).status).toBe(404);
  });

  it("creates the pool when its nodes fit", async () => {
    expect((await create("fits", { maxNodes: 7 })).status).toBe(201);
  });

  it("creates a pool without per-node grants whatever its size", async () => {
    expect((await create("no-grants", { maxNodes: 100_000, roleGrants: [] })).status).toBe(201);
  });

  it("refuses an update that raises maxNodes or adds grants past the cap, and keeps the pool as it was", async () => {
    expect((await create("grows", { maxNodes: 7 })).status).toBe(201);
    const read = await app.call("GET", "/api/manage/pools/grows", { headers: admin });
    const { name: _name, etag: _etag, ...current } = read.json as Record<string, unknown>;
    const put = (extra: Record<string, unknown>) =>
      app.call("PUT", "/api/manage/pools/grows", {
        headers: { ...admin, "if-match": read.headers["etag"]! },
        body: { clusterResourceId: CLUSTER_ID, arc: { resourceGroupId: ARC_RG, location: "eastus" }, roleGrants: grants, ...extra },
      });
    const res = await put({ maxNodes: 10 });
    expect(res.status).toBe(409);
    expect(res.json).toMatchObject({ type: "https://flexnode.dev/problems/role-assignment-cap", nodes: 10, grantsPerNode: 2, maxNodesThatFit: 7 });
    expect((await app.call("GET", "/api/manage/pools/grows", { headers: admin })).json).toMatchObject({ maxNodes: current["maxNodes"] });
    // Asking no more than it was let in with is not checked again; fewer grants per node fit more nodes.
    expect((await put({ maxNodes: 7, maxInFlight: 3 })).status).toBe(200);
  });
});
