import { AuthorizationManagementClient } from "@azure/arm-authorization";
import type { HttpHeaders, RestError } from "@azure/core-rest-pipeline";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { ManualClock } from "../support/index.js";
import type { ArmEmulator } from "./arm-emulator.js";
import { emulatorToken } from "./credential.js";
import { BUILT_IN_ROLES, roleDefinitionId } from "./role-definitions.js";
import { NO_RETRIES, openTransport, TRANSPORTS, type ArmTransport } from "./sdk-transport.js";
import { newEmulator, RG_SCOPE, SERVICE_PRINCIPAL_ID, serviceCredential, SUBSCRIPTION_ID } from "./test-fixtures.js";
import { pathArg } from "../../orchestrations/clients/arm/resource-id.js";

const READER = roleDefinitionId(BUILT_IN_ROLES.Reader, SUBSCRIPTION_ID);

function guid(n: number): string {
  return `00000000-0000-4000-8000-${n.toString(16).padStart(12, "0")}`;
}

function grant(n: number) {
  return { roleDefinitionId: READER, principalId: guid(1_000 + n), principalType: "ServicePrincipal" as const };
}

describe.each(TRANSPORTS)("throttling over %s", (kind) => {
  let emulator: ArmEmulator;
  let clock: ManualClock;
  let transport: ArmTransport;

  beforeEach(async () => {
    ({ emulator, clock } = newEmulator({ throttling: { writes: { burst: 5, refillPerSecond: 2 } } }));
    transport = await openTransport(emulator, kind);
  });
  afterEach(() => transport.close());

  it("lets a burst of writes through, then answers 429 with Retry-After until emulated time refills the bucket", async () => {
    const authz = new AuthorizationManagementClient(serviceCredential, SUBSCRIPTION_ID, { ...transport.options, ...NO_RETRIES });
    const remaining: string[] = [];
    const onResponse = (raw: { headers: HttpHeaders }) => {
      remaining.push(raw.headers.get("x-ms-ratelimit-remaining-subscription-writes") ?? "missing");
    };
    for (let i = 1; i <= 5; i++) await authz.roleAssignments.create(pathArg(RG_SCOPE), guid(i), grant(i), { onResponse });
    expect(remaining).toEqual(["4", "3", "2", "1", "0"]);

    const throttled = (await authz.roleAssignments.create(pathArg(RG_SCOPE), guid(6), grant(6)).catch((e: unknown) => e)) as RestError;
    expect(throttled.statusCode).toBe(429);
    expect(throttled.code).toBe("SubscriptionRequestsThrottled");
    expect(throttled.message).toContain(`actor '${SERVICE_PRINCIPAL_ID}'`);
    expect(throttled.response?.headers.get("retry-after")).toBe("1");

    // Reads have their own bucket.
    await authz.roleAssignments.get(pathArg(RG_SCOPE), guid(1));

    clock.advance(499);
    await expect(authz.roleAssignments.create(pathArg(RG_SCOPE), guid(6), grant(6))).rejects.toMatchObject({ statusCode: 429 });
    clock.advance(1);
    await authz.roleAssignments.create(pathArg(RG_SCOPE), guid(6), grant(6));
    await expect(authz.roleAssignments.create(pathArg(RG_SCOPE), guid(7), grant(7))).rejects.toMatchObject({ statusCode: 429 });

    const writes = emulator.requests.filter({ method: "PUT" });
    expect(writes.map((e) => (e.throttled ? "T" : "ok"))).toEqual(["ok", "ok", "ok", "ok", "ok", "T", "T", "ok", "T"]);
    expect(emulator.inspect.roleAssignments()).toHaveLength(6);
  });

  it("surfaces a 429 without Retry-After as a RestError at once", async () => {
    const authz = new AuthorizationManagementClient(serviceCredential, SUBSCRIPTION_ID, transport.options);
    emulator.faults.inject({ method: "PUT", path: "*", status: 429 });
    await expect(authz.roleAssignments.create(pathArg(RG_SCOPE), guid(1), grant(1))).rejects.toMatchObject({
      name: "RestError",
      statusCode: 429,
      code: "TooManyRequests",
    });
    expect(emulator.requests.entries).toHaveLength(1);
  });
});

describe("throttling limits", () => {
  it("has the SDK retry a 429 carrying Retry-After with the same client request id", async () => {
    // The SDK really sleeps for Retry-After (1 s here), so this runs on one transport only.
    const { emulator } = newEmulator();
    const authz = new AuthorizationManagementClient(serviceCredential, SUBSCRIPTION_ID, emulator.clientOptions());
    emulator.faults.inject({ method: "PUT", path: /\/roleAssignments\//i, status: 429, retryAfterSeconds: 1 });
    const created = await authz.roleAssignments.create(pathArg(RG_SCOPE), guid(1), grant(1));
    expect(created.name).toBe(guid(1));

    const puts = emulator.requests.filter({ method: "PUT" });
    expect(puts.map((e) => [e.status, e.faulted])).toEqual([
      [429, "status"],
      [201, undefined],
    ]);
    expect(puts[0]?.clientRequestId).toBeDefined();
    expect(puts[1]?.clientRequestId).toBe(puts[0]?.clientRequestId);
  });

  const headers = (principal: string) => ({ authorization: `Bearer ${emulatorToken(principal)}` });
  const read = (emulator: ArmEmulator, principal: string) =>
    emulator.handle({
      method: "GET",
      url: `${RG_SCOPE}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01`,
      headers: headers(principal),
    });

  it("defaults to ARM's 250-read burst per principal and reports the global bucket too", async () => {
    const { emulator } = newEmulator();
    for (let i = 0; i < 250; i++) expect((await read(emulator, SERVICE_PRINCIPAL_ID)).status).toBe(200);
    const refused = await read(emulator, SERVICE_PRINCIPAL_ID);
    expect(refused.status).toBe(429);
    expect(refused.headers["retry-after"]).toBe("1");
    expect(refused.headers["x-ms-ratelimit-remaining-subscription-reads"]).toBe("0");
    expect(refused.headers["x-ms-ratelimit-remaining-subscription-global-reads"]).toBe(String(250 * 15 - 250));
    // Another principal has its own bucket.
    expect((await read(emulator, guid(77))).status).toBe(200);
  });

  it("shares the subscription-wide bucket between principals", async () => {
    const { emulator, clock } = newEmulator({ throttling: { reads: { burst: 2, refillPerSecond: 1 }, globalMultiplier: 1 } });
    expect((await read(emulator, guid(1))).status).toBe(200);
    expect((await read(emulator, guid(2))).status).toBe(200);
    const refused = await read(emulator, guid(3));
    expect(refused.status).toBe(429);
    expect(JSON.stringify(refused.body)).not.toContain("actor");
    clock.advance(1_000);
    expect((await read(emulator, guid(3))).status).toBe(200);
  });

  it("can be switched off", async () => {
    const { emulator } = newEmulator({ throttling: false });
    for (let i = 0; i < 300; i++) expect((await read(emulator, SERVICE_PRINCIPAL_ID)).status).toBe(200);
    expect(emulator.requests.filter({ status: 429 })).toEqual([]);
  });
});
