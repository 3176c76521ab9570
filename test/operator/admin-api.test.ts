/**
 * The operator's admin routes on the whole app (function tier): node progress and timeline, retry, cancel, token and
 * pool deletion, the fleet summary, operations behind every 202, and list filters — each with its authorization,
 * validation, problem type and audit rows. The onboarding saga is the stand-in (it waits until told to finish); cancel
 * runs the real compensation.
 */
import { inject } from "vitest";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Registry } from "../../orchestrations/clients/registry/registry.js";
import { admin, newNode, reader, startApp, type TestApp, useStandInSaga } from "../function-app/index.js";

useStandInSaga();

let app: TestApp;
let registry: Registry;
beforeAll(async () => {
  app = await startApp();
  registry = new Registry({ connectionString: inject("azuriteConnectionString"), prefix: app.prefix });
});
afterAll(async () => {
  await app.close();
});

const problemType = (res: { json: unknown }) => (res.json as { type: string }).type.replace("https://flexnode.dev/problems/", "");
const auditOf = async (objectId: string) => (await registry.audit.list({ objectId })).map((e) => `${e.actor} ${e.action}`);

async function enrolled(pool: string): Promise<string> {
  const res = await app.enrol(newNode(), await app.createToken(pool));
  expect(res.status).toBe(201);
  return (res.json as { nodeId: string }).nodeId;
}

describe("writes need FlexNode.Admin, reads FlexNode.Reader", () => {
  it.each([
    ["POST", "/api/manage/nodes/fn-000000000000000000000000/retry"],
    ["POST", "/api/manage/nodes/fn-000000000000000000000000/cancel"],
    ["DELETE", "/api/manage/tokens/0000000000000000"],
    ["DELETE", "/api/manage/pools/nobody"],
  ])("%s %s: 401 anonymous, 403 reader", async (method, path) => {
    const anonymous = await app.call(method, path);
    expect([anonymous.status, problemType(anonymous), anonymous.headers["content-type"]]).toEqual([401, "unauthenticated", "application/problem+json"]);
    const asReader = await app.call(method, path, { headers: reader });
    expect([asReader.status, problemType(asReader)]).toEqual([403, "forbidden"]);
  });

  it.each(["/api/manage/fleet", "/api/manage/operations/fn-000000000000000000000000", "/api/manage/nodes/fn-000000000000000000000000"])(
    "GET %s: 401 anonymous, allowed to a reader",
    async (path) => {
      expect((await app.call("GET", path)).status).toBe(401);
      expect([200, 404]).toContain((await app.call("GET", path, { headers: reader })).status);
    },
  );
});

describe("admin writes from another site", () => {
  it("are refused when the browser says the request comes from another site, whatever the session; nothing changes", async () => {
    await app.createPool("csrf", { maxInFlight: 2 });
    const nodeId = await enrolled("csrf");
    const path = `/api/manage/nodes/${nodeId}/decommission`;
    for (const site of ["cross-site", "same-site"]) {
      const before = await app.snapshot();
      const res = await app.call("POST", path, { headers: { ...admin, "sec-fetch-site": site } });
      expect([res.status, problemType(res)]).toEqual([403, "cross-site-request"]);
      expect(await app.snapshot()).toBe(before);
    }
    // The fleet page (same origin) is unaffected, as are clients that are not browsers (no such header).
    expect((await app.call("POST", path, { headers: { ...admin, "sec-fetch-site": "same-origin" } })).status).toBe(202);
  });
});

describe("a node's progress and timeline", () => {
  it("shows the running saga's custom status and the node's audit events, oldest first", async () => {
    await app.createPool("watch");
    const nodeId = await enrolled("watch");
    await app.simulator.runUntilIdle();
    const res = await app.call("GET", `/api/manage/nodes/${nodeId}`, { headers: reader });
    expect(res.status).toBe(200);
    const body = res.json as {
      status: string;
      progress: { operationId: string; runtimeStatus: string; phase: string };
      timeline: { kind: string; what: string }[];
    };
    expect(body.status).toBe("Enrolling");
    expect(body.progress).toMatchObject({ operationId: nodeId, runtimeStatus: "Running", phase: "test-saga" });
    expect(body.timeline.map((e) => `${e.kind}:${e.what}`)).toEqual(["event:node.enrol"]);
  });
});

describe("cancel and retry", () => {
  it("cancels an onboarding in flight through compensation (202 + Location), then retries the Failed node under the same id", async () => {
    await app.createPool("cancel", { maxInFlight: 1 });
    const nodeId = await enrolled("cancel");
    await app.simulator.runUntilIdle();

    const cancelled = await app.call("POST", `/api/manage/nodes/${nodeId}/cancel`, { headers: admin });
    expect(cancelled.status).toBe(202);
    expect(cancelled.headers.location).toBe(`/api/manage/operations/${nodeId}:compensate`);
    await app.simulator.runUntilIdle();
    expect(app.simulator.getStatus(nodeId)?.runtimeStatus).toBe("Terminated");
    await app.simulator.runToCompletion(`${nodeId}:compensate`);
    const op = await app.call("GET", cancelled.headers.location!, { headers: reader });
    expect(op.json).toMatchObject({ operationId: `${nodeId}:compensate`, orchestration: "compensateNode", runtimeStatus: "Completed", phase: "failed" });
    const failed = (await registry.nodes.get(nodeId))!;
    // The node reads lastError: it names no administrator; the audit does.
    expect([failed.status, failed.lastError?.code, failed.lastError?.message]).toEqual(["Failed", "Cancelled", "cancelled by an administrator"]);
    expect(await registry.audit.list({ objectId: nodeId })).toContainEqual(expect.objectContaining({ action: "node.cancel", actor: "alice@contoso.example" }));
    expect((await registry.pools.get("cancel"))!.inFlight).toBe(0);

    // Only an onboarding in flight can be cancelled; nothing changes on a refusal.
    const before = await app.snapshot();
    const again = await app.call("POST", `/api/manage/nodes/${nodeId}/cancel`, { headers: admin });
    expect([again.status, problemType(again)]).toEqual([409, "conflict"]);
    expect(await app.snapshot()).toBe(before);

    const firstRun = (app.simulator.getStatus(nodeId)!.input as { run: string }).run;
    const retried = await app.call("POST", `/api/manage/nodes/${nodeId}/retry`, { headers: admin });
    expect(retried.status).toBe(202);
    expect(retried.json).toEqual({ nodeId, status: "Enrolling", operationId: nodeId });
    expect(retried.headers.location).toBe(`/api/manage/operations/${nodeId}`);
    await app.simulator.runUntilIdle();
    const run = app.simulator.getStatus(nodeId)!;
    expect(run.runtimeStatus).toBe("Running");
    expect((run.input as { run: string }).run).not.toBe(firstRun);
    expect((await registry.pools.get("cancel"))!.inFlight).toBe(1);

    // Retrying a node that is not Failed is a conflict.
    const notFailed = await app.call("POST", `/api/manage/nodes/${nodeId}/retry`, { headers: admin });
    expect([notFailed.status, problemType(notFailed)]).toEqual([409, "conflict"]);

    expect(await auditOf(nodeId)).toEqual(
      expect.arrayContaining(["alice@contoso.example node.cancel", "service:onboard node.failed", "alice@contoso.example node.retry"]),
    );
    const timeline = ((await app.call("GET", `/api/manage/nodes/${nodeId}`, { headers: reader })).json as { timeline: { what: string }[] }).timeline;
    expect(timeline.map((e) => e.what)).toEqual(["node.enrol", "node.cancel", "node.compensating", "node.failed", "node.retry"]);
  });

  it("answers a retry into a full pool as any retry (202, a fresh run); the node waits for a slot and gets the next one freed", async () => {
    await app.createPool("full", { maxInFlight: 1 });
    const first = await enrolled("full");
    const firstRun = (app.simulator.getStatus(first)!.input as { run: string }).run;
    // Its run ends (as a failed saga's does) and leaves it Failed.
    app.simulator.raiseEvent(first, "test-finish", "failed");
    await app.simulator.runUntilIdle();
    await registry.nodes.update(
      { pool: "full", nodeId: first },
      () => ({ status: "Failed", lastError: { code: "X", message: "x", at: new Date().toISOString() } }),
      "test",
      "test",
    );
    const second = await enrolled("full");
    // The app saw the pool full a moment ago, and the slot was freed by another process (this test's registry): the
    // second node waits, and takes the free slot at its saga's first look.
    expect(await registry.nodes.takeSlot({ pool: "full", nodeId: second }, { waited: false, at: new Date().toISOString() })).toBe(true);
    expect((await registry.nodes.get(second))!.slot).toBe("slot:0");
    const res = await app.call("POST", `/api/manage/nodes/${first}/retry`, { headers: admin });
    expect([res.status, res.headers["retry-after"]]).toEqual([202, undefined]);
    expect(res.json).toEqual({ nodeId: first, status: "Enrolling", operationId: first });
    expect(res.headers.location).toBe(`/api/manage/operations/${first}`);
    await app.simulator.runUntilIdle();
    const run = app.simulator.getStatus(first)!;
    expect(run.runtimeStatus).toBe("Running");
    expect(run.input).toMatchObject({ nodeId: first, pool: "full", waitsForSlot: true });
    expect((run.input as { run: string }).run).not.toBe(firstRun);
    expect(await auditOf(first)).toContain("alice@contoso.example node.retry");
    // Enrolling, in a waiting row: the pool's one slot stays the second node's.
    const retried = (await registry.nodes.get(first))!;
    expect(retried).toMatchObject({ status: "Enrolling", slot: expect.stringMatching(new RegExp(`^slot:~w:\\d{15}:${first}$`)) });
    expect(retried.lastError).toBeUndefined();
    expect((await registry.pools.get("full"))!).toMatchObject({ inFlight: 1, waiting: 1 });
    // The second node leaves in-flight: its slot goes to the retried node.
    await registry.nodes.update({ pool: "full", nodeId: second }, () => ({ status: "Ready" }), "test", "test");
    expect((await registry.nodes.get(first))!.slot).toBe("slot:0");
    expect((await registry.pools.get("full"))!).toMatchObject({ inFlight: 1, waiting: 0 });
  });

  it("answers 404 for an unknown node and 400 naming the field for a malformed id", async () => {
    const unknown = await app.call("POST", "/api/manage/nodes/fn-000000000000000000000000/retry", { headers: admin });
    expect([unknown.status, problemType(unknown)]).toEqual([404, "not-found"]);
    const bad = await app.call("POST", "/api/manage/nodes/edge-01/cancel", { headers: admin });
    expect([bad.status, problemType(bad), (bad.json as { errors: { path: string }[] }).errors[0]!.path]).toEqual([400, "validation-failed", "/params/nodeId"]);
  });
});

describe("deleting tokens and pools", () => {
  it("revokes and removes a token (204), audited; the second delete is 404", async () => {
    await app.createPool("tokdel");
    const created = await app.call("POST", "/api/manage/pools/tokdel/tokens", { headers: admin, body: {} });
    const { tokenId, token } = created.json as { tokenId: string; token: string };
    const res = await app.call("DELETE", `/api/manage/tokens/${tokenId}`, { headers: admin });
    expect([res.status, res.body ?? ""]).toEqual([204, ""]);
    expect((await app.call("GET", `/api/manage/tokens/${tokenId}`, { headers: reader })).status).toBe(404);
    expect((await app.enrol(newNode(), token)).status).toBe(403);
    expect(await auditOf(tokenId)).toEqual(["alice@contoso.example token.delete", "alice@contoso.example token.revoke", "alice@contoso.example token.create"]);
    expect((await app.call("DELETE", `/api/manage/tokens/${tokenId}`, { headers: admin })).status).toBe(404);
    const bad = await app.call("DELETE", "/api/manage/tokens/xyz", { headers: admin });
    expect([bad.status, problemType(bad)]).toEqual([400, "validation-failed"]);
  });

  it("deletes an empty pool (204, audited) and refuses one with nodes (409 pool-not-empty, nothing changed)", async () => {
    await app.createPool("busy");
    await enrolled("busy");
    const before = await app.snapshot();
    const refused = await app.call("DELETE", "/api/manage/pools/busy", { headers: admin });
    expect([refused.status, problemType(refused)]).toEqual([409, "pool-not-empty"]);
    expect(await app.snapshot()).toBe(before);

    await app.createPool("empty");
    expect((await app.call("DELETE", "/api/manage/pools/empty", { headers: admin })).status).toBe(204);
    expect((await app.call("GET", "/api/manage/pools/empty", { headers: reader })).status).toBe(404);
    expect(await auditOf("empty")).toEqual(["alice@contoso.example pool.delete", "alice@contoso.example pool.create"]);
    expect((await app.call("DELETE", "/api/manage/pools/empty", { headers: admin })).status).toBe(404);
  });
});

describe("the fleet and list filters", () => {
  it("counts nodes by pool and status against capacity, and failures by code", async () => {
    await app.createPool("fleet-a", { maxInFlight: 3 });
    const a = await enrolled("fleet-a");
    await enrolled("fleet-a");
    await registry.nodes.update(
      { pool: "fleet-a", nodeId: a },
      () => ({ status: "Failed", lastError: { code: "NodeStepFailed", message: "sysctl", at: new Date().toISOString() } }),
      "test",
      "test",
    );
    const res = await app.call("GET", "/api/manage/fleet", { headers: reader });
    expect(res.status).toBe(200);
    const body = res.json as { pools: { pool: string }[]; failures: { lastHour: Record<string, number> }; partial: boolean };
    expect(body.pools.find((p) => p.pool === "fleet-a")).toMatchObject({ nodes: 2, inFlight: 1, maxInFlight: 3, byStatus: { Enrolling: 1, Failed: 1 } });
    expect(body.failures.lastHour.NodeStepFailed).toBeGreaterThanOrEqual(1);
    expect(body.partial).toBe(false);

    const byCode = await app.call("GET", "/api/manage/nodes?failureCode=NodeStepFailed&pool=fleet-a", { headers: reader });
    expect((byCode.json as { items: { nodeId: string }[] }).items.map((n) => n.nodeId)).toEqual([a]);
    const future = await app.call("GET", `/api/manage/nodes?pool=fleet-a&createdSince=${new Date(Date.now() + 60_000).toISOString()}`, { headers: reader });
    expect((future.json as { items: unknown[] }).items).toEqual([]);
    const since = await app.call("GET", `/api/manage/nodes?pool=fleet-a&createdSince=2020-01-01T00:00:00Z&pageSize=1`, { headers: reader });
    expect((since.json as { items: unknown[]; continuationToken?: string }).items).toHaveLength(1);
    const bad = await app.call("GET", "/api/manage/nodes?createdSince=yesterday", { headers: reader });
    expect([bad.status, problemType(bad), (bad.json as { errors: { path: string }[] }).errors[0]!.path]).toEqual([
      400,
      "validation-failed",
      "/query/createdSince",
    ]);
  });

  it("answers 404 for an unknown operation and 400 for a malformed one", async () => {
    expect((await app.call("GET", "/api/manage/operations/fn-000000000000000000000000:offboard", { headers: reader })).status).toBe(404);
    expect((await app.call("GET", "/api/manage/operations/anything", { headers: reader })).status).toBe(400);
  });
});
