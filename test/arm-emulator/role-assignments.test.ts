import { AuthorizationManagementClient, type RoleAssignment } from "@azure/arm-authorization";
import { ResourceManagementClient } from "@azure/arm-resources";
import { isRestError, type RestError } from "@azure/core-rest-pipeline";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { ManualClock } from "../support/index.js";
import type { ArmEmulator } from "./arm-emulator.js";
import { emulatorCredential } from "./credential.js";
import { BUILT_IN_ROLES, roleDefinitionId } from "./role-definitions.js";
import { NO_RETRIES, openTransport, TRANSPORTS, type ArmTransport } from "./sdk-transport.js";
import { machineBody, machineId, newEmulator, RG_SCOPE, SERVICE_PRINCIPAL_ID, serviceCredential, SUBSCRIPTION_ID } from "./test-fixtures.js";
import { pathArg } from "../../orchestrations/clients/arm/resource-id.js";

const SUB_SCOPE = `/subscriptions/${SUBSCRIPTION_ID}`;
const CLUSTER_SCOPE = `${RG_SCOPE}/providers/Microsoft.ContainerService/managedClusters/aks-1`;
const READER = roleDefinitionId(BUILT_IN_ROLES.Reader, SUBSCRIPTION_ID);
const AKS_USER = roleDefinitionId(BUILT_IN_ROLES["Azure Kubernetes Service Cluster User Role"], SUBSCRIPTION_ID);
const NODE_PRINCIPAL = "a0000000-0000-4000-8000-0000000000a1";
const OTHER_PRINCIPAL = "b0000000-0000-4000-8000-0000000000b2";
const NAME_1 = "11111111-aaaa-4000-8000-000000000001";
const NAME_2 = "22222222-aaaa-4000-8000-000000000002";
const NAME_3 = "33333333-aaaa-4000-8000-000000000003";

async function rejection(promise: Promise<unknown>): Promise<RestError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  // The hlc SDKs load core-rest-pipeline's CommonJS build, so `instanceof` against the ESM class would be false.
  expect(isRestError(error)).toBe(true);
  return error as RestError;
}

describe.each(TRANSPORTS)("role assignments over %s", (kind) => {
  let emulator: ArmEmulator;
  let clock: ManualClock;
  let transport: ArmTransport;
  let authz: AuthorizationManagementClient;

  beforeEach(async () => {
    ({ emulator, clock } = newEmulator({ replicationDelayMs: 30_000 }));
    emulator.addPrincipal({ id: NODE_PRINCIPAL });
    emulator.addPrincipal({ id: OTHER_PRINCIPAL, type: "User" });
    transport = await openTransport(emulator, kind);
    authz = new AuthorizationManagementClient(serviceCredential, SUBSCRIPTION_ID, { ...transport.options, ...NO_RETRIES });
  });
  afterEach(() => transport.close());

  it("refuses a just-created machine identity with PrincipalNotFound until principalType is set or it replicates", async () => {
    const resources = new ResourceManagementClient(serviceCredential, SUBSCRIPTION_ID, { ...transport.options, ...NO_RETRIES });
    const machine = await resources.resources.beginCreateOrUpdateByIdAndWait(pathArg(machineId("node-1")), "2025-01-13", machineBody(), {
      updateIntervalInMs: 1,
    });
    const principalId = machine.identity!.principalId!;

    const error = await rejection(authz.roleAssignments.create(pathArg(RG_SCOPE), NAME_1, { roleDefinitionId: READER, principalId }));
    expect(error.statusCode).toBe(400);
    expect(error.code).toBe("PrincipalNotFound");
    expect(error.message).toContain(`does not exist in the directory ${emulator.tenantId}`);
    expect(error.message).toContain("set the role assignment principalType property");

    const withType = await authz.roleAssignments.create(pathArg(RG_SCOPE), NAME_1, {
      roleDefinitionId: READER,
      principalId,
      principalType: "ServicePrincipal",
    });
    expect(withType.principalType).toBe("ServicePrincipal");

    await rejection(authz.roleAssignments.create(pathArg(CLUSTER_SCOPE), NAME_2, { roleDefinitionId: AKS_USER, principalId }));
    clock.advance(29_999);
    await rejection(authz.roleAssignments.create(pathArg(CLUSTER_SCOPE), NAME_2, { roleDefinitionId: AKS_USER, principalId }));
    clock.advance(1);
    const replicated = await authz.roleAssignments.create(pathArg(CLUSTER_SCOPE), NAME_2, { roleDefinitionId: AKS_USER, principalId });
    expect(replicated.principalType).toBe("ServicePrincipal");
    expect(emulator.requests.filter({ route: "roleAssignments.put" }).map((e) => e.errorCode ?? e.status)).toEqual([
      "PrincipalNotFound",
      201,
      "PrincipalNotFound",
      "PrincipalNotFound",
      201,
    ]);
  });

  it("is idempotent under one name, conflicts under two, and refuses to retarget a name", async () => {
    const params = { roleDefinitionId: READER, principalId: NODE_PRINCIPAL, principalType: "ServicePrincipal" as const, description: "node" };
    const first = await authz.roleAssignments.create(pathArg(RG_SCOPE), NAME_1, params);
    clock.advance(5_000);
    const again = await authz.roleAssignments.create(pathArg(RG_SCOPE), NAME_1, params);
    expect(again.id).toBe(first.id);
    expect(emulator.requests.filter({ route: "roleAssignments.put" }).map((e) => e.status)).toEqual([201, 200]);
    expect(again.createdOn).toEqual(new Date(clock.now() - 5_000));
    expect(again.updatedOn).toEqual(new Date(clock.now()));

    const exists = await rejection(authz.roleAssignments.create(pathArg(RG_SCOPE), NAME_2, params));
    expect(exists.statusCode).toBe(409);
    expect(exists.code).toBe("RoleAssignmentExists");

    const otherPrincipal = await rejection(authz.roleAssignments.create(pathArg(RG_SCOPE), NAME_1, { ...params, principalId: OTHER_PRINCIPAL }));
    expect(otherPrincipal).toMatchObject({ statusCode: 400, code: "RoleAssignmentUpdateNotPermitted" });
    const otherScope = await rejection(authz.roleAssignments.create(pathArg(SUB_SCOPE), NAME_1, params));
    expect(otherScope.code).toBe("RoleAssignmentUpdateNotPermitted");
    const otherRole = await rejection(authz.roleAssignments.create(pathArg(RG_SCOPE), NAME_1, { ...params, roleDefinitionId: AKS_USER }));
    expect(otherRole.code).toBe("RoleAssignmentUpdateNotPermitted");
    expect(emulator.inspect.roleAssignments()).toHaveLength(1);
  });

  it("knows a grant whatever the case of its scope and principal, and forgets it once deleted", async () => {
    const params = { roleDefinitionId: READER, principalId: NODE_PRINCIPAL, principalType: "ServicePrincipal" as const };
    await authz.roleAssignments.create(pathArg(RG_SCOPE), NAME_1, params);
    const shouted = await rejection(
      authz.roleAssignments.create(pathArg(RG_SCOPE.toUpperCase()), NAME_2, { ...params, principalId: NODE_PRINCIPAL.toUpperCase() }),
    );
    expect(shouted.code).toBe("RoleAssignmentExists");
    // Another condition is another grant.
    const conditioned = await authz.roleAssignments.create(pathArg(RG_SCOPE), NAME_3, { ...params, condition: "@Resource[x] StringEquals 'y'" });
    expect(conditioned.name).toBe(NAME_3);
    await authz.roleAssignments.delete(pathArg(RG_SCOPE), NAME_1);
    const recreated = await authz.roleAssignments.create(pathArg(RG_SCOPE), NAME_2, params);
    expect(recreated.name).toBe(NAME_2);
    expect(
      emulator.inspect
        .roleAssignments()
        .map((ra) => ra.name)
        .sort(),
    ).toEqual([NAME_2, NAME_3]);
  });

  it("returns the 2022-04-01 shape with emulated timestamps and the caller as creator", async () => {
    const created = await authz.roleAssignments.create(pathArg(CLUSTER_SCOPE), NAME_1, {
      roleDefinitionId: `/providers/Microsoft.Authorization/roleDefinitions/${BUILT_IN_ROLES["Azure Kubernetes Service Cluster User Role"]}`,
      principalId: NODE_PRINCIPAL,
    });
    expect(created).toMatchObject({
      id: `${CLUSTER_SCOPE}/providers/Microsoft.Authorization/roleAssignments/${NAME_1}`,
      name: NAME_1,
      type: "Microsoft.Authorization/roleAssignments",
      scope: CLUSTER_SCOPE,
      roleDefinitionId: AKS_USER,
      principalId: NODE_PRINCIPAL,
      principalType: "ServicePrincipal",
      createdBy: SERVICE_PRINCIPAL_ID,
      updatedBy: SERVICE_PRINCIPAL_ID,
      createdOn: new Date("2030-01-01T00:00:00.000Z"),
    });
    const fetched = await authz.roleAssignments.getById(pathArg(created.id!));
    expect(fetched.principalId).toBe(NODE_PRINCIPAL);
  });

  it("rejects unknown role definitions and missing assignments", async () => {
    const unknownRole = await rejection(
      authz.roleAssignments.create(pathArg(RG_SCOPE), NAME_1, {
        roleDefinitionId: roleDefinitionId("99999999-9999-4999-8999-999999999999", SUBSCRIPTION_ID),
        principalId: NODE_PRINCIPAL,
        principalType: "ServicePrincipal",
      }),
    );
    expect(unknownRole).toMatchObject({ statusCode: 400, code: "RoleDefinitionDoesNotExist" });
    const missing = await rejection(authz.roleAssignments.get(pathArg(RG_SCOPE), NAME_1));
    expect(missing).toMatchObject({ statusCode: 404, code: "RoleAssignmentNotFound" });
  });

  it("deletes with 200 and the assignment, then 204", async () => {
    await authz.roleAssignments.create(pathArg(RG_SCOPE), NAME_1, { roleDefinitionId: READER, principalId: NODE_PRINCIPAL });
    const deleted = await authz.roleAssignments.delete(pathArg(RG_SCOPE), NAME_1);
    expect(deleted.principalId).toBe(NODE_PRINCIPAL);
    await authz.roleAssignments.delete(pathArg(RG_SCOPE), NAME_1);
    expect(emulator.requests.filter({ route: "roleAssignments.delete" }).map((e) => e.status)).toEqual([200, 204]);
    expect(emulator.inspect.roleAssignments()).toEqual([]);
  });

  it("lists with atScope(), assignedTo(), principalId eq and their combination", async () => {
    const create = (scope: string, name: string, principalId: string, role = READER) =>
      authz.roleAssignments.create(pathArg(scope), name, { roleDefinitionId: role, principalId });
    await create(SUB_SCOPE, NAME_1, NODE_PRINCIPAL);
    await create(RG_SCOPE, NAME_2, OTHER_PRINCIPAL);
    await create(CLUSTER_SCOPE, NAME_3, NODE_PRINCIPAL, AKS_USER);

    const names = async (scope: string, filter?: string) => {
      const out: string[] = [];
      for await (const ra of authz.roleAssignments.listForScope(pathArg(scope), filter === undefined ? {} : { filter })) out.push(nameOf(ra));
      return out.sort();
    };
    // Without a filter: at, above and below the scope.
    expect(await names(RG_SCOPE)).toEqual([NAME_1, NAME_2, NAME_3]);
    // atScope(): at and inherited from above, nothing below.
    expect(await names(RG_SCOPE, "atScope()")).toEqual([NAME_1, NAME_2]);
    expect(await names(CLUSTER_SCOPE, "atScope()")).toEqual([NAME_1, NAME_2, NAME_3]);
    expect(await names(RG_SCOPE, `assignedTo('${NODE_PRINCIPAL}')`)).toEqual([NAME_1, NAME_3]);
    expect(await names(RG_SCOPE, `principalId eq '${OTHER_PRINCIPAL}'`)).toEqual([NAME_2]);
    expect(await names(RG_SCOPE, `atScope() and assignedTo('${NODE_PRINCIPAL}')`)).toEqual([NAME_1]);
    expect(await names(RG_SCOPE, `atScope()+and+principalId+eq+'${NODE_PRINCIPAL}'`)).toEqual([NAME_1]);

    const lists = emulator.requests.filter({ route: "roleAssignments.list" });
    expect(lists.map((e) => e.query["$filter"])).toContain(`atScope() and assignedTo('${NODE_PRINCIPAL}')`);
    expect(lists.every((e) => e.path.startsWith("/subscriptions/"))).toBe(true);

    const unsupported = await rejection(names(RG_SCOPE, "roleDefinitionId eq 'x'"));
    expect(unsupported).toMatchObject({ statusCode: 400, code: "UnsupportedQuery" });
  });
});

describe("role assignments by principal", () => {
  it("lets a caller's own token principal be assigned without principalType", async () => {
    const { emulator } = newEmulator();
    const me = "c0000000-0000-4000-8000-0000000000c3";
    const authz = new AuthorizationManagementClient(emulatorCredential(me), SUBSCRIPTION_ID, emulator.clientOptions());
    const ra = await authz.roleAssignments.create(pathArg(RG_SCOPE), NAME_1, { roleDefinitionId: READER, principalId: me });
    expect(ra.createdBy).toBe(me);
  });
});

function nameOf(ra: RoleAssignment): string {
  return ra.name ?? "";
}
