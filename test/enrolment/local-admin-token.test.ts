/**
 * The admin API under `func start`, where there is no App Service authentication: a forged client-principal header
 * opens nothing, LOCAL_ADMIN_TOKEN (as a bearer token) is the admin `local-admin` and audit rows name it, and the
 * setting is refused — loudly, by the settings parse and by the admin API — wherever the platform runs the app.
 */
import { readFileSync } from "node:fs";
import { inject } from "vitest";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { Registry } from "../../orchestrations/clients/registry/registry.js";
import { parseSettings } from "../../orchestrations/settings.js";
import { admin, ARC_RG, CLUSTER_ID, startApp, type TestApp, useStandInSaga } from "../function-app/index.js";

useStandInSaga();

const TOKEN = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const problemType = (res: { json: unknown }) => (res.json as { type: string }).type.replace("https://flexnode.dev/problems/", "");

let app: TestApp;
let registry: Registry;
beforeAll(async () => {
  app = await startApp();
  registry = new Registry({ connectionString: inject("azuriteConnectionString"), prefix: app.prefix });
});
afterAll(async () => {
  await app.close();
});

// As under `func start` with local.settings.sample.json: no WEBSITE_AUTH_ENABLED (only the platform sets it).
const saved: Record<string, string | undefined> = {};
const LOCAL = ["WEBSITE_AUTH_ENABLED", "LOCAL_ADMIN_TOKEN", "WEBSITE_INSTANCE_ID", "WEBSITE_SITE_NAME", "WEBSITE_SKU"];
beforeEach(() => {
  for (const k of LOCAL) saved[k] = process.env[k];
  delete process.env.WEBSITE_AUTH_ENABLED;
  process.env.LOCAL_ADMIN_TOKEN = TOKEN;
});
afterEach(() => {
  for (const k of LOCAL) {
    if (saved[k] === undefined) delete process.env[k];
    else process.env[k] = saved[k];
  }
});

describe("LOCAL_ADMIN_TOKEN (func start)", () => {
  it("makes the bearer of the token the admin local-admin, named in the audit; a forged principal header opens nothing", async () => {
    const forged = await app.call("GET", "/api/manage/pools", { headers: admin });
    expect([forged.status, problemType(forged)]).toEqual([401, "unauthenticated"]);
    const wrong = await app.call("GET", "/api/manage/pools", { headers: bearer(TOKEN.replace(/f$/, "e")) });
    expect([wrong.status, wrong.headers["www-authenticate"]]).toEqual([401, 'Bearer realm="flexnode"']);

    const body = { name: "local", clusterResourceId: CLUSTER_ID, arc: { resourceGroupId: ARC_RG, location: "eastus" } };
    const created = await app.call("POST", "/api/manage/pools", { headers: bearer(TOKEN), body });
    expect(created.status).toBe(201);
    expect((await app.call("GET", "/api/manage/pools/local", { headers: bearer(TOKEN) })).status).toBe(200);
    expect(await registry.audit.list({ objectId: "local" })).toContainEqual(expect.objectContaining({ action: "pool.create", actor: "local-admin" }));
  });

  it("without the token or App Service authentication, answers 401 pointing at configuring authentication", async () => {
    delete process.env.LOCAL_ADMIN_TOKEN;
    const res = await app.call("GET", "/api/manage/pools", { headers: admin });
    expect([res.status, problemType(res)]).toEqual([401, "unauthenticated"]);
    const detail = (res.json as { detail: string }).detail;
    expect(detail).toMatch(/App Service authentication/);
    expect(detail).toMatch(/LOCAL_ADMIN_TOKEN/);
    expect(detail).not.toMatch(/WEBSITE_AUTH_ENABLED/);
  });

  it.each([
    ["WEBSITE_INSTANCE_ID", "0f2b4a6c8e"],
    ["WEBSITE_SITE_NAME", "func-abc123"],
    ["WEBSITE_SKU", "FlexConsumption"],
  ])("is refused where the platform runs the app (%s set): 503 invalid-settings, never an admin", async (marker, value) => {
    process.env[marker] = value;
    const res = await app.call("GET", "/api/manage/pools", { headers: bearer(TOKEN) });
    expect([res.status, problemType(res)]).toEqual([503, "invalid-settings"]);
    expect((res.json as { errors: { path: string }[] }).errors).toEqual([expect.objectContaining({ path: "/LOCAL_ADMIN_TOKEN" })]);
    // Even with App Service authentication on, the admin API says so rather than leave the setting there unused; the
    // rest of the service, which never reads it, goes on (enrolment's own answer is unaffected by it).
    process.env.WEBSITE_AUTH_ENABLED = "True";
    expect((await app.call("GET", "/api/manage/pools", { headers: { ...admin, ...bearer(TOKEN) } })).status).toBe(503);
    expect(() =>
      parseSettings({ DURABLE_TASK_HUB: "Hub1", REGISTRY_CONNECTION: "UseDevelopmentStorage=true", LOCAL_ADMIN_TOKEN: TOKEN, [marker]: value }),
    ).not.toThrow();
    expect((await app.call("GET", "/api/healthz")).status).not.toBe(503);
  });

  it("must be long enough to be a secret", async () => {
    process.env.LOCAL_ADMIN_TOKEN = "short-token";
    const res = await app.call("GET", "/api/manage/pools", { headers: bearer("short-token") });
    expect([res.status, problemType(res)]).toEqual([503, "invalid-settings"]);
    expect(() => parseSettings({ DURABLE_TASK_HUB: "Hub1", REGISTRY_CONNECTION: "UseDevelopmentStorage=true", LOCAL_ADMIN_TOKEN: "x".repeat(31) })).toThrow(
      /at least 32/,
    );
  });

  it("local.settings.sample.json does not claim App Service authentication, and names the local token", () => {
    const sample = JSON.parse(readFileSync("local.settings.sample.json", "utf8")) as { Values: Record<string, string> };
    expect(sample.Values).not.toHaveProperty("WEBSITE_AUTH_ENABLED");
    expect(sample.Values).toHaveProperty("LOCAL_ADMIN_TOKEN");
  });
});
