import https from "node:https";
import { AuthorizationManagementClient } from "@azure/arm-authorization";
import { HybridComputeManagementClient } from "@azure/arm-hybridcompute";
import { ResourceManagementClient } from "@azure/arm-resources";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { ArmEmulator } from "./arm-emulator.js";
import { emulatorToken } from "./credential.js";
import type { ListeningEmulator } from "./https-server.js";
import type { RouteInfo } from "./router.js";
import { FAST_RETRIES, openTransport, TRANSPORTS, type ArmTransport } from "./sdk-transport.js";
import { machineBody, machineId, newEmulator, RESOURCE_GROUP, RG_SCOPE, SERVICE_PRINCIPAL_ID, serviceCredential, SUBSCRIPTION_ID } from "./test-fixtures.js";
import { pathArg } from "../../orchestrations/clients/arm/resource-id.js";

const AUTH = { authorization: `Bearer ${emulatorToken(SERVICE_PRINCIPAL_ID)}` };
const LRO = { updateIntervalInMs: 1 };

/** A raw HTTPS request, so the test controls exactly what goes on the wire (path, headers). */
function rawRequest(server: ListeningEmulator, method: string, path: string, headers: Record<string, string> = {}) {
  return new Promise<{ status: number; headers: Record<string, unknown>; body: unknown }>((resolve, reject) => {
    const req = https.request({ host: "127.0.0.1", port: server.port, method, path, headers, ca: server.ca }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (text += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text === "" ? undefined : (JSON.parse(text) as unknown) }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("request validation", () => {
  let emulator: ArmEmulator;
  let server: ListeningEmulator;

  beforeEach(async () => {
    emulator = newEmulator().emulator;
    server = await emulator.listen();
  });
  afterEach(() => server.close());

  it("requires a well-formed api-version", async () => {
    const missing = await rawRequest(server, "GET", `${machineId("m")}`, AUTH);
    expect(missing.status).toBe(400);
    expect(missing.body).toEqual({
      error: { code: "MissingApiVersionParameter", message: "The api-version query parameter (?api-version=) is required for all requests." },
    });
    const malformed = await emulator.handle({ method: "GET", url: `${machineId("m")}?api-version=latest`, headers: AUTH });
    expect(malformed.status).toBe(400);
    expect(malformed.body).toMatchObject({ error: { code: "InvalidApiVersionParameter" } });
  });

  it("authenticates with the bearer token: 401 without it or with a bad one", async () => {
    const anonymous = await rawRequest(server, "GET", `${machineId("m")}?api-version=2025-01-13`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.body).toMatchObject({ error: { code: "AuthenticationFailed" } });
    expect(anonymous.headers["www-authenticate"]).toContain("Bearer");

    const badCredential = { getToken: () => Promise.resolve({ token: "not-a-jwt", expiresOnTimestamp: Number.MAX_SAFE_INTEGER }) };
    const hybrid = new HybridComputeManagementClient(badCredential, SUBSCRIPTION_ID, server.clientOptions());
    await expect(hybrid.machines.get(RESOURCE_GROUP, "m")).rejects.toMatchObject({ statusCode: 401, code: "InvalidAuthenticationToken" });
    expect(emulator.requests.entries.map((e) => e.principalId)).toEqual([undefined, undefined]);
  });

  it("refuses a path with an empty segment, the // an SDK sends for an id passed with its leading slash", async () => {
    const doubled = await rawRequest(server, "GET", `//subscriptions/${SUBSCRIPTION_ID}/resourceGroups/${RESOURCE_GROUP}?api-version=2022-09-01`, AUTH);
    expect(doubled.status).toBe(400);
    expect(doubled.body).toMatchObject({ error: { code: "InvalidRequestUri" } });
    const inner = await rawRequest(server, "GET", `/subscriptions/${SUBSCRIPTION_ID}//resourceGroups/${RESOURCE_GROUP}?api-version=2022-09-01`, AUTH);
    expect(inner.status).toBe(400);
    const single = await rawRequest(server, "GET", `/subscriptions/${SUBSCRIPTION_ID}/resourceGroups/${RESOURCE_GROUP}?api-version=2022-09-01`, AUTH);
    expect(single.body).toMatchObject({ name: RESOURCE_GROUP, type: "Microsoft.Resources/resourceGroups" });
  });

  it("answers unknown routes with 404 and unsupported methods with 405, and refuses bad JSON", async () => {
    const unknownType = await emulator.handle({
      method: "GET",
      url: `${RG_SCOPE}/providers/Microsoft.HybridCompute/gadgets/x?api-version=2025-01-13`,
      headers: AUTH,
    });
    expect(unknownType.status).toBe(404);
    expect(unknownType.body).toMatchObject({ error: { code: "InvalidResourceType" } });
    const wrongMethod = await emulator.handle({
      method: "PATCH",
      url: `${RG_SCOPE}/providers/Microsoft.Authorization/roleAssignments/x?api-version=2022-04-01`,
      headers: AUTH,
    });
    expect(wrongMethod.status).toBe(405);
    const badJson = await emulator.handle({ method: "PUT", url: `${machineId("m")}?api-version=2025-01-13`, headers: AUTH, body: "{nope" });
    expect(badJson.status).toBe(400);
    expect(badJson.body).toMatchObject({ error: { code: "InvalidRequestContent" } });
  });

  it("adds ARM's bookkeeping headers and echoes the client's ids", async () => {
    const res = await rawRequest(server, "GET", `${RG_SCOPE}?api-version=2022-09-01`, {
      ...AUTH,
      "x-ms-client-request-id": "client-1",
      "x-ms-correlation-request-id": "corr-1",
    });
    expect(res.headers["x-ms-client-request-id"]).toBe("client-1");
    expect(res.headers["x-ms-correlation-request-id"]).toBe("corr-1");
    expect(res.headers["x-ms-request-id"]).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.headers["x-ms-routing-request-id"]).toBe("EMULATOR:20300101T000000Z:corr-1");
    expect(res.headers["x-ms-ratelimit-remaining-subscription-reads"]).toBe("249");
    expect(res.headers["x-ms-ratelimit-remaining-subscription-global-reads"]).toBe("3749");
    const generated = await emulator.handle({ method: "GET", url: `${RG_SCOPE}?api-version=2022-09-01`, headers: AUTH });
    expect(generated.headers["x-ms-correlation-request-id"]).toMatch(/^[0-9a-f-]{36}$/);
    expect(generated.headers["x-ms-client-request-id"]).toBeUndefined();
  });
});

describe("resource ids", () => {
  it("resolves mixed-case ids to the same resource and answers in the casing it was created with", async () => {
    const { emulator } = newEmulator();
    const rm = new ResourceManagementClient(serviceCredential, SUBSCRIPTION_ID, emulator.clientOptions());
    const shouting = `/SUBSCRIPTIONS/${SUBSCRIPTION_ID}/RESOURCEGROUPS/RG-FLEX/providers/microsoft.hybridcompute/MACHINES/Node-01`;
    const created = await rm.resources.beginCreateOrUpdateByIdAndWait(pathArg(shouting), "2025-01-13", machineBody(), LRO);
    expect(created.id).toBe(machineId("Node-01"));

    const hybrid = new HybridComputeManagementClient(serviceCredential, SUBSCRIPTION_ID, emulator.clientOptions());
    const fetched = await hybrid.machines.get("rg-FLEX", "node-01");
    expect(fetched.identity?.principalId).toBe(created.identity?.principalId);
    expect(fetched.name).toBe("Node-01");
    expect(emulator.inspect.machines()).toHaveLength(1);
  });
});

describe.each(TRANSPORTS)("faults over %s", (kind) => {
  let emulator: ArmEmulator;
  let transport: ArmTransport;

  beforeEach(async () => {
    emulator = newEmulator().emulator;
    transport = await openTransport(emulator, kind);
  });
  afterEach(() => transport.close());

  it("lets the SDK retry injected 500s", async () => {
    const authz = new AuthorizationManagementClient(serviceCredential, SUBSCRIPTION_ID, { ...transport.options, ...FAST_RETRIES });
    const fault = emulator.faults.inject({ method: "GET", path: `${RG_SCOPE}/providers/Microsoft.Authorization/roleAssignments`, status: 500, times: 2 });
    const listed = [];
    for await (const ra of authz.roleAssignments.listForScope(pathArg(RG_SCOPE))) listed.push(ra);
    expect(listed).toEqual([]);
    expect(fault.hits).toBe(2);
    expect(emulator.requests.entries.map((e) => [e.status, e.errorCode])).toEqual([
      [500, "InternalServerError"],
      [500, "InternalServerError"],
      [200, undefined],
    ]);
  });

  it("drops the connection: retried once, surfaced as ECONNRESET when it persists", async () => {
    const hybrid = new HybridComputeManagementClient(serviceCredential, SUBSCRIPTION_ID, { ...transport.options, ...FAST_RETRIES });
    const rm = new ResourceManagementClient(serviceCredential, SUBSCRIPTION_ID, transport.options);
    await rm.resources.beginCreateOrUpdateByIdAndWait(pathArg(machineId("node-d")), "2025-01-13", machineBody(), LRO);
    emulator.requests.clear();

    emulator.faults.inject({ method: "GET", path: machineId("node-d"), drop: true });
    const machine = await hybrid.machines.get(RESOURCE_GROUP, "node-d");
    expect(machine.name).toBe("node-d");
    expect(emulator.requests.entries.map((e) => [e.status, e.faulted])).toEqual([
      [0, "drop"],
      [200, undefined],
    ]);
    expect(emulator.requests.entries[0]?.principalId).toBe(SERVICE_PRINCIPAL_ID);

    emulator.faults.inject({ path: `${machineId("node-d")}*`, drop: true, times: Number.POSITIVE_INFINITY });
    await expect(hybrid.machines.get(RESOURCE_GROUP, "node-d")).rejects.toMatchObject({ code: "ECONNRESET" });
    expect(emulator.requests.filter({ status: 0 })).toHaveLength(1 + 4);
  });
});

describe("latency", () => {
  it("waits out injected and modelled latency through the injectable sleep", async () => {
    const slept: number[] = [];
    const seen: RouteInfo[] = [];
    const { emulator } = newEmulator({
      sleep: (ms) => {
        slept.push(ms);
        return Promise.resolve();
      },
      latency: (route) => {
        seen.push(route);
        return route.opClass === "writes" ? 40 : 0;
      },
    });
    emulator.faults.inject({ path: /\/machines\//, latencyMs: 250 });
    await emulator.handle({ method: "GET", url: `${machineId("m")}?api-version=2025-01-13`, headers: AUTH });
    await emulator.handle({ method: "PUT", url: `${machineId("m")}?api-version=2025-01-13`, headers: AUTH, body: JSON.stringify(machineBody()) });
    expect(slept).toEqual([250, 40]);
    expect(seen.map((r) => r.route)).toEqual(["machines.get", "machines.put"]);
    expect(emulator.requests.entries.map((e) => [e.status, e.faulted])).toEqual([
      [404, "latency"],
      [200, undefined],
    ]);
  });
});

describe("reset", () => {
  it("forgets what callers created but keeps the fixtures", async () => {
    const { emulator } = newEmulator();
    emulator.addCluster({ subscriptionId: SUBSCRIPTION_ID, resourceGroup: RESOURCE_GROUP, name: "aks" });
    await emulator.handle({ method: "PUT", url: `${machineId("m")}?api-version=2025-01-13`, headers: AUTH, body: JSON.stringify(machineBody({ a: "b" })) });
    emulator.faults.inject({ path: "*", status: 503 });
    emulator.reset();
    expect(emulator.inspect.machines()).toEqual([]);
    expect(emulator.requests.entries).toEqual([]);
    expect(emulator.events.published).toEqual([]);
    expect(emulator.faults.active).toEqual([]);
    expect(emulator.inspect.clusters().map((c) => c.name)).toEqual(["aks"]);
    const again = await emulator.handle({ method: "PUT", url: `${machineId("m")}?api-version=2025-01-13`, headers: AUTH, body: JSON.stringify(machineBody()) });
    expect(again.status).toBe(200);
  });
});
