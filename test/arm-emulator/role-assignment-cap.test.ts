/**
 * ARM's role-assignment cap: 4,000 per subscription, counting subscription, resource-group and resource scopes
 * (MicrosoftDocs/azure-docs articles/role-based-access-control/troubleshoot-limits.md @ 6e25da4c: "No more role
 * assignments can be created (code: RoleAssignmentLimitExceeded)"; HTTP 400 as quoted in a vendor's terraform
 * troubleshooting table: `Status=400 Code="RoleAssignmentLimitExceeded" No more role assignments can be created`).
 */
import { AuthorizationManagementClient } from "@azure/arm-authorization";
import { describe, expect, it } from "vitest";
import { pathArg } from "../../orchestrations/clients/arm/resource-id.js";
import { ROLE_ASSIGNMENTS_PER_SUBSCRIPTION } from "./arm-emulator.js";
import { emulatorToken } from "./credential.js";
import { BUILT_IN_ROLES, roleDefinitionId } from "./role-definitions.js";
import { NO_RETRIES } from "./sdk-transport.js";
import { newEmulator, RG_SCOPE, SERVICE_PRINCIPAL_ID, serviceCredential, SUBSCRIPTION_ID } from "./test-fixtures.js";

const READER = roleDefinitionId(BUILT_IN_ROLES.Reader, SUBSCRIPTION_ID);
const OTHER_SUBSCRIPTION = "00000000-0000-4000-8000-0000000000f2";

function guid(n: number): string {
  return `00000000-0000-4000-8000-${n.toString(16).padStart(12, "0")}`;
}

function grant(n: number) {
  return { roleDefinitionId: READER, principalId: guid(100_000 + n), principalType: "ServicePrincipal" as const };
}

describe("the role-assignment cap", () => {
  it("is ARM's 4,000 per subscription by default", () => {
    expect(ROLE_ASSIGNMENTS_PER_SUBSCRIPTION).toBe(4_000);
  });

  it("refuses the assignment past the cap with RoleAssignmentLimitExceeded, counting every scope in the subscription", async () => {
    const { emulator } = newEmulator({ roleAssignmentsPerSubscription: 3, throttling: false });
    emulator.addResourceGroup(OTHER_SUBSCRIPTION, "rg-other");
    const authz = new AuthorizationManagementClient(serviceCredential, SUBSCRIPTION_ID, { ...emulator.clientOptions(), ...NO_RETRIES });
    await authz.roleAssignments.create(pathArg(`/subscriptions/${SUBSCRIPTION_ID}`), guid(1), grant(1));
    await authz.roleAssignments.create(pathArg(RG_SCOPE), guid(2), grant(2));
    await authz.roleAssignments.create(pathArg(`${RG_SCOPE}/providers/Microsoft.HybridCompute/machines/m1`), guid(3), grant(3));

    const refused = await authz.roleAssignments.create(pathArg(RG_SCOPE), guid(4), grant(4)).catch((e: unknown) => e);
    expect(refused).toMatchObject({ statusCode: 400, code: "RoleAssignmentLimitExceeded", message: "No more role assignments can be created." });
    expect(emulator.inspect.roleAssignments()).toHaveLength(3);

    // Re-PUT of an existing assignment is an update, not a new one; another subscription has its own cap.
    await authz.roleAssignments.create(pathArg(RG_SCOPE), guid(2), grant(2));
    await authz.roleAssignments.create(pathArg(`/subscriptions/${OTHER_SUBSCRIPTION}/resourceGroups/rg-other`), guid(5), grant(5));

    // A removal frees a place.
    await authz.roleAssignments.delete(pathArg(RG_SCOPE), guid(2));
    await authz.roleAssignments.create(pathArg(RG_SCOPE), guid(4), grant(4));
  });
});

describe("remaining-requests headers", () => {
  it("come with every answer past authentication, successes and provider errors alike, and with the 429", async () => {
    const { emulator } = newEmulator({ throttling: { writes: { burst: 2, refillPerSecond: 1 } } });
    const put = (n: number, body: unknown) =>
      emulator.handle({
        method: "PUT",
        url: `${RG_SCOPE}/providers/Microsoft.Authorization/roleAssignments/${guid(n)}?api-version=2022-04-01`,
        headers: { authorization: `Bearer ${emulatorToken(SERVICE_PRINCIPAL_ID)}` },
        body: JSON.stringify(body),
      });
    const ok = await put(1, { properties: grant(1) });
    const providerError = await put(2, { properties: { roleDefinitionId: READER, principalId: "not-a-guid" } });
    const throttled = await put(3, { properties: grant(3) });
    expect([ok.status, providerError.status, throttled.status]).toEqual([201, 400, 429]);
    expect([ok, providerError, throttled].map((r) => r.headers["x-ms-ratelimit-remaining-subscription-writes"])).toEqual(["1", "0", "0"]);
    expect(ok.headers["x-ms-ratelimit-remaining-subscription-global-writes"]).toBe(String(2 * 15 - 1));
  });
});
