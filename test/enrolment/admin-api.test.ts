import { validate } from "@readme/openapi-parser";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { functionsCore } from "../functions-host/index.js";
import { admin, ARC_RG, CLUSTER_ID, newNode, reader, startApp, type TestApp, useStandInSaga } from "../function-app/index.js";
import { clientPrincipalHeader } from "../../functions/http/principal.js";

useStandInSaga();

let app: TestApp;
beforeAll(async () => {
  app = await startApp();
});
afterAll(async () => {
  await app.close();
});

const poolBody = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  clusterResourceId: CLUSTER_ID,
  arc: { resourceGroupId: ARC_RG, location: "eastus" },
  ...extra,
});
const problemType = (res: { json: unknown }) => (res.json as { type: string }).type.replace("https://flexnode.dev/problems/", "");

describe("admin API authorization (App Service authentication principal + app roles)", () => {
  it("refuses anonymous callers with 401 and callers without the role with 403", async () => {
    expect((await app.call("GET", "/api/manage/pools")).status).toBe(401);
    const nobody = { "x-ms-client-principal": clientPrincipalHeader({ name: "eve", roles: [] }) };
    expect((await app.call("GET", "/api/manage/pools", { headers: nobody })).status).toBe(403);
    expect((await app.call("GET", "/api/manage/pools", { headers: reader })).status).toBe(200);
    const write = await app.call("POST", "/api/manage/pools", { headers: reader, body: poolBody("readers-cannot") });
    expect([write.status, problemType(write)]).toEqual([403, "forbidden"]);
    expect((await app.call("GET", "/api/manage/pools/readers-cannot", { headers: reader })).status).toBe(404);
  });

  it("does not trust principal headers when App Service authentication is off", async () => {
    const saved = process.env.WEBSITE_AUTH_ENABLED;
    delete process.env.WEBSITE_AUTH_ENABLED;
    try {
      const res = await app.call("GET", "/api/manage/pools", { headers: admin });
      expect([res.status, problemType(res)]).toEqual([401, "unauthenticated"]);
    } finally {
      process.env.WEBSITE_AUTH_ENABLED = saved;
    }
  });
});

describe("pools", () => {
  it("creates, lists, gets and updates pools with ETags, auditing who did it", async () => {
    const created = await app.call("POST", "/api/manage/pools", { headers: admin, body: poolBody("lyon", { nodeLabels: { site: "lyon" }, maxInFlight: 5 }) });
    expect(created.status).toBe(201);
    expect(created.headers.location).toBe("/api/manage/pools/lyon");
    expect(created.json).toMatchObject({
      name: "lyon",
      inFlight: 0,
      maxInFlight: 5,
      clonePolicy: "reject",
      approvalPolicy: "token",
      nodeLabels: { site: "lyon" },
    });
    expect((await app.call("POST", "/api/manage/pools", { headers: admin, body: poolBody("lyon") })).status).toBe(409);

    const got = await app.call("GET", "/api/manage/pools/lyon", { headers: reader });
    const etag = got.headers.etag!;
    const spec = { clusterResourceId: CLUSTER_ID, arc: { resourceGroupId: ARC_RG, location: "westeurope" } };
    const updated = await app.call("PUT", "/api/manage/pools/lyon", { headers: { ...admin, "if-match": etag }, body: spec });
    expect(updated.status).toBe(200);
    expect(updated.json).toMatchObject({ arc: { location: "westeurope" }, maxInFlight: 20 });
    const stale = await app.call("PUT", "/api/manage/pools/lyon", { headers: { ...admin, "if-match": etag }, body: spec });
    expect([stale.status, problemType(stale)]).toEqual([409, "conflict"]);

    const list = await app.call("GET", "/api/manage/pools?pageSize=10", { headers: reader });
    expect((list.json as { items: { name: string }[] }).items.map((p) => p.name)).toContain("lyon");
  });
});

describe("tokens", () => {
  it("returns the secret once, with the enrolment URL and install command, and never again", async () => {
    await app.call("POST", "/api/manage/pools", { headers: admin, body: poolBody("tok") });
    const res = await app.call("POST", "/api/manage/pools/tok/tokens", { headers: admin, body: { maxUses: 3, description: "rack 4" } });
    expect(res.status).toBe(201);
    const created = res.json as { token: string; tokenId: string; enrolmentUrl: string; installCommand: string; createdBy: string };
    expect(created.token).toMatch(/^fnt\.[0-9a-f]{16}\.[A-Za-z0-9_-]{43}$/);
    expect(created.enrolmentUrl).toBe(`https://flexnode.example/api/enrol#token=${created.token}`);
    expect(created.installCommand).toBe(`sudo flexnode-agent enrol --url '${created.enrolmentUrl}'`);
    expect(created.createdBy).toBe("alice@contoso.example");

    const secret = created.token.split(".")[2]!;
    const got = await app.call("GET", `/api/manage/tokens/${created.tokenId}`, { headers: reader });
    const listed = await app.call("GET", "/api/manage/tokens?pool=tok", { headers: reader });
    for (const r of [got, listed]) {
      expect(r.status).toBe(200);
      expect(r.body).not.toContain(secret);
      expect(r.body).not.toContain("secretHash");
    }
    expect((listed.json as { items: unknown[] }).items).toHaveLength(1);
    expect(await app.snapshot()).not.toContain(secret);

    const revoked = await app.call("POST", `/api/manage/tokens/${created.tokenId}/revoke`, { headers: admin });
    expect((revoked.json as { revokedAt?: string }).revokedAt).toBeDefined();
    // Revoking again is harmless and keeps the first revocation time.
    const again = await app.call("POST", `/api/manage/tokens/${created.tokenId}/revoke`, { headers: admin });
    expect((again.json as { revokedAt?: string }).revokedAt).toBe((revoked.json as { revokedAt?: string }).revokedAt);
    expect((await app.call("POST", "/api/manage/pools/missing/tokens", { headers: admin, body: {} })).status).toBe(404);
  });
});

describe("nodes", () => {
  it("lists by pool and status a page at a time, and gets one", async () => {
    await app.call("POST", "/api/manage/pools", { headers: admin, body: poolBody("paged", { maxInFlight: 100 }) });
    const token = ((await app.call("POST", "/api/manage/pools/paged/tokens", { headers: admin, body: { maxUses: 10 } })).json as { token: string }).token;
    const approval = (
      (await app.call("POST", "/api/manage/pools/paged/tokens", { headers: admin, body: { approvalRequired: true } })).json as { token: string }
    ).token;
    for (let i = 0; i < 5; i++) expect((await app.enrol(newNode(), token)).status).toBe(201);
    expect((await app.enrol(newNode(), approval)).status).toBe(202);

    const seen: string[] = [];
    let continuation: string | undefined;
    for (let page = 0; page < 10; page++) {
      const res = await app.call(
        "GET",
        `/api/manage/nodes?pool=paged&pageSize=2${continuation ? `&continuationToken=${encodeURIComponent(continuation)}` : ""}`,
        { headers: reader },
      );
      const body = res.json as { items: { nodeId: string }[]; continuationToken?: string };
      expect(body.items.length).toBeLessThanOrEqual(2);
      seen.push(...body.items.map((n) => n.nodeId));
      continuation = body.continuationToken;
      if (!continuation) break;
    }
    expect(new Set(seen).size).toBe(6);

    const waiting = await app.call("GET", "/api/manage/nodes?status=AwaitingApproval", { headers: reader });
    const items = (waiting.json as { items: { nodeId: string; status: string }[] }).items;
    expect(items.map((n) => n.status)).toEqual(["AwaitingApproval"]);
    const one = await app.call("GET", `/api/manage/nodes/${items[0]!.nodeId}`, { headers: reader });
    expect(one.json).toMatchObject({ nodeId: items[0]!.nodeId, pool: "paged", status: "AwaitingApproval" });
    expect((await app.call("GET", `/api/manage/nodes/fn-${"0".repeat(24)}`, { headers: reader })).status).toBe(404);
    expect((await app.call("GET", "/api/manage/nodes/not-a-node-id", { headers: reader })).status).toBe(400);
  });
});

describe("GET /api/openapi.json", () => {
  it("is a valid OpenAPI 3.1 document listing every HTTP function's route and method", async () => {
    const res = await app.call("GET", "/api/openapi.json");
    expect(res.status).toBe(200);
    const doc = res.json as { openapi: string; paths: Record<string, Record<string, unknown>> };
    expect(doc.openapi).toBe("3.1.0");
    const result = await validate(structuredClone(doc) as never);
    expect(result.valid, JSON.stringify("errors" in result ? result.errors : [])).toBe(true);

    const documented = Object.entries(doc.paths)
      .flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`))
      .sort();
    const registered = functionsCore()
      .byTriggerType("httpTrigger")
      .filter((f) => !f.metadata.name.startsWith("sim_") && !f.metadata.name.startsWith("hostTest_"))
      .flatMap((f) => ((f.trigger.methods as string[]) ?? []).map((m) => `${m} /api/${String(f.trigger.route)}`))
      .sort();
    expect(documented).toEqual(registered);
    expect(documented).toEqual(expect.arrayContaining(["POST /api/enrol", "POST /api/manage/pools/{pool}/tokens", "GET /api/manage/nodes"]));
  });
});
