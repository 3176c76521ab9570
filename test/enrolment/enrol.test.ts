import { performance } from "node:perf_hooks";
import { createDefaultHttpClient, type HttpClient } from "@azure/core-rest-pipeline";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Registry } from "../../orchestrations/clients/registry/registry.js";
import { inject } from "vitest";
import { exportPublicKey } from "../../contract/keys.js";
import { admin, newNode, serviceSigningKey, startApp, type TestApp, useStandInSaga } from "../function-app/index.js";

useStandInSaga();

let app: TestApp;
beforeEach(async () => {
  app = await startApp();
  expect((await app.createPool("edge", { maxInFlight: 3 })).status).toBe(201);
});
afterEach(async () => {
  await app.close();
});

const registry = () => new Registry({ connectionString: inject("azuriteConnectionString"), prefix: app.prefix });
/** The stand-in saga ends failed and the node is marked Failed, as the real saga's failure path leaves it. */
async function failOnboarding(nodeId: string): Promise<void> {
  await app.simulator.runUntilIdle();
  app.simulator.raiseEvent(nodeId, "test-finish", "failed");
  await app.simulator.runUntilIdle();
  await registry().nodes.update(
    (await registry().nodes.get(nodeId))!,
    () => ({ status: "Failed", lastError: { code: "X", message: "boom", at: new Date().toISOString() } }),
    "saga",
    "node.fail",
  );
}

/** A WorkflowClient with no saga anywhere, for calling the enrol use case directly. */
const noSagas = {
  start: () => Promise.resolve(),
  status: () => Promise.resolve(undefined),
  terminate: () => Promise.resolve(),
  describe: () => Promise.resolve(undefined),
};

const problemType = (res: { json: unknown }) => (res.json as { type: string }).type.replace("https://flexnode.dev/problems/", "");

describe("POST /api/enrol", () => {
  it("enrols a node, starts its saga under the node id, and answers a retry with the same node and no second saga", async () => {
    const token = await app.createToken("edge", { maxUses: 5, labels: { site: "lyon" } });
    const node = newNode();
    const first = await app.enrol(node, token);
    expect(first.status).toBe(201);
    const body = first.json as { nodeId: string; status: string; keyId: string };
    expect(body).toMatchObject({ pool: "edge", status: "Enrolling", nodeApi: { statusPath: "/api/node/status" } });
    expect(body.nodeId).toMatch(/^fn-[0-9a-f]{24}$/);
    // Mailbox tokens scoped to this node's queue and the results queue, and the key that signs its envelopes.
    const { mailbox, service } = first.json as {
      mailbox: { queue: string; listenSas: string; sendSas: string; expiresAt: string; refreshAfter: string };
      service: { publicKey: string };
    };
    expect(mailbox.queue).toBe(`node-${body.nodeId}`);
    expect(decodeURIComponent(mailbox.listenSas)).toContain(`sr=sb://sb.invalid/node-${body.nodeId}&`);
    expect(mailbox.listenSas).toContain("skn=flexnode-node-listen");
    expect(decodeURIComponent(mailbox.sendSas)).toContain("sr=sb://sb.invalid/node-results&");
    expect(Date.parse(mailbox.expiresAt) - Date.parse(mailbox.refreshAfter)).toBe(3600_000);
    expect(service.publicKey).toBe(exportPublicKey(serviceSigningKey));

    expect(app.simulator.getStatus(body.nodeId)).toMatchObject({ name: "onboardNode", runtimeStatus: "Pending", input: { nodeId: body.nodeId, pool: "edge" } });
    await app.simulator.runUntilIdle();
    const created = app.simulator.getStatus(body.nodeId)!.createdTime;

    const again = await app.enrol(node, token);
    expect(again.status).toBe(200);
    expect(again.json).toMatchObject({ nodeId: body.nodeId, status: "Enrolling", keyId: body.keyId });
    expect(app.simulator.getStatus(body.nodeId)!.createdTime).toBe(created);
    expect(app.simulator.instanceIds()).toEqual([body.nodeId]);

    const stored = (await registry().nodes.get(body.nodeId))!;
    expect(stored).toMatchObject({ status: "Enrolling", labels: { site: "lyon" }, keyId: body.keyId, sagaInstanceId: body.nodeId });
    expect((await registry().pools.get("edge"))!.inFlight).toBe(1);
    expect((await registry().tokens.list()).items[0]!.uses).toBe(1);
  });

  it("restarts a lost saga when a node retries (the first attempt crashed after writing the node)", async () => {
    const token = await app.createToken("edge");
    const node = newNode();
    const { nodeId } = (await app.enrol(node, token)).json as { nodeId: string };
    await app.simulator.runUntilIdle();
    app.simulator.terminate(nodeId, "lost");
    await app.simulator.runUntilIdle();
    app.simulator.purge(nodeId);
    expect((await app.enrol(node, token)).status).toBe(200);
    expect(app.simulator.getStatus(nodeId)?.runtimeStatus).toBe("Pending");
  });

  it("distinguishes unknown, expired, revoked and used-up tokens", async () => {
    const node = newNode();
    const before = await app.snapshot();
    const bogus = await app.enrol(node, `fnt.${"0".repeat(16)}.${"A".repeat(43)}`);
    expect([bogus.status, problemType(bogus)]).toEqual([403, "token-unknown"]);
    // Not even its nonce: anyone with a fresh key could otherwise make the service write a row per request.
    expect(await app.snapshot()).toBe(before);

    const good = await app.createToken("edge");
    const wrongSecret = good.replace(/\.[^.]+$/, `.${"B".repeat(43)}`);
    expect(problemType(await app.enrol(node, wrongSecret))).toBe("token-unknown");

    const revoked = await app.createToken("edge");
    const tokenId = revoked.split(".")[1]!;
    expect((await app.call("POST", `/api/manage/tokens/${tokenId}/revoke`, { headers: admin })).status).toBe(200);
    expect(problemType(await app.enrol(node, revoked))).toBe("token-revoked");

    const single = await app.createToken("edge");
    expect((await app.enrol(newNode(), single)).status).toBe(201);
    const used = await app.enrol(node, single);
    expect([used.status, problemType(used)]).toEqual([403, "token-exhausted"]);
    expect(used.headers["content-type"]).toBe("application/problem+json");

    // Expiry: a token created "now" is judged later by a registry whose clock has moved past it.
    const expiring = await app.createToken("edge", { expiresInHours: 1 });
    const { enrol } = await import("../../orchestrations/use-cases/enrol.js");
    const later = () => new Date(Date.now() + 2 * 3600_000);
    const outcome = enrol(
      {
        registry: registry(),
        events: { publish: () => Promise.resolve() },
        now: later,
        workflows: noSagas,
      },
      { token: expiring, facts: node.facts, publicKey: node.publicKey, keyId: "k" },
    );
    await expect(outcome).rejects.toMatchObject({ code: "token-expired" });
  });

  it("redeems a single-use token exactly once under 100 concurrent enrolments", async () => {
    await app.call("PUT", "/api/manage/pools/edge", {
      headers: admin,
      body: {
        clusterResourceId: (await registry().pools.get("edge"))!.clusterResourceId,
        arc: { resourceGroupId: (await registry().pools.get("edge"))!.arc.resourceGroupId, location: "eastus" },
        maxInFlight: 200,
      },
    });
    const token = await app.createToken("edge");
    const nodes = Array.from({ length: 100 }, () => newNode());
    const started = performance.now();
    const results = await Promise.all(nodes.map((n) => app.enrol(n, token)));
    const elapsedMs = performance.now() - started;

    const byStatus = new Map<number, number>();
    for (const r of results) byStatus.set(r.status, (byStatus.get(r.status) ?? 0) + 1);
    expect(Object.fromEntries(byStatus)).toEqual({ 201: 1, 403: 99 });
    expect(new Set(results.filter((r) => r.status === 403).map(problemType))).toEqual(new Set(["token-exhausted"]));
    const tokenId = token.split(".")[1]!;
    expect((await registry().tokens.get(tokenId))!.uses).toBe(1);
    expect((await registry().nodes.list({ pool: "edge" })).items).toHaveLength(1);
    expect((await registry().pools.get("edge"))!.inFlight).toBe(1);
    expect(app.simulator.instanceIds()).toHaveLength(1);
    // The losers' keys bound before their token use was refused are released; every request's nonce stays.
    const indexRows = (await app.snapshot()).split("\n").filter((row) => row.startsWith("index:"));
    const kinds = indexRows.map((row) => (JSON.parse(row.slice("index:".length)) as { rowKey: string }).rowKey.split(":")[0]);
    expect({ key: kinds.filter((k) => k === "key").length, nonce: kinds.filter((k) => k === "nonce").length }).toEqual({ key: 1, nonce: 100 });
    // The figure for the closing note; not an assertion (timing belongs in benchmarks).
    console.warn(`[measure] 100 concurrent single-use redemptions: ${elapsedMs.toFixed(0)} ms`);
  });

  it("takes a single-use token's use with the key's binding only while the token is as read: revoked in between, nothing is bound and nothing spent", async () => {
    const token = await app.createToken("edge");
    const tokenId = token.split(".")[1]!;
    const node = newNode();
    const transport = createDefaultHttpClient();
    const batches: string[] = [];
    // Just before the enrolment's first transaction (key, node id, nonce, token use) reaches the table, an admin
    // revokes the token: the transaction's ETag is stale.
    const httpClient: HttpClient = {
      sendRequest: async (request) => {
        if (request.url.endsWith("/$batch")) {
          batches.push(String(request.body));
          if (batches.length === 1) await registry().tokens.revoke(tokenId, "admin");
        }
        return transport.sendRequest(request);
      },
    };
    const { enrol } = await import("../../orchestrations/use-cases/enrol.js");
    const outcome = enrol(
      {
        registry: new Registry({ connectionString: inject("azuriteConnectionString"), prefix: app.prefix, httpClient }),
        events: { publish: () => Promise.resolve() },
        now: () => new Date(),
        workflows: noSagas,
        nonce: { keyId: "k1", nonce: "n1", expiresAt: new Date(Date.now() + 600_000) },
      },
      { token, facts: node.facts, publicKey: node.publicKey, keyId: "k1" },
    );
    await expect(outcome).rejects.toMatchObject({ code: "token-revoked" });
    // The first transaction carried the token's use and was refused whole; the second went without it.
    expect(batches.map((b) => b.includes(`token:${tokenId}`))).toEqual([true, false]);
    const index = (await app.snapshot())
      .split("\n")
      .filter((row) => row.startsWith("index:"))
      .map((row) => JSON.parse(row.slice("index:".length)) as { rowKey: string; uses?: number; revokedAt?: string });
    expect(index.map((r) => r.rowKey.split(":")[0]).sort()).toEqual([expect.stringMatching(/^fn-/), "nonce", "token"]);
    expect(index.find((r) => r.rowKey.startsWith("token:"))).toMatchObject({ uses: 0, revokedAt: expect.any(String) });
    expect((await registry().nodes.list({ pool: "edge" })).items).toEqual([]);
  });

  it("enrols a node past the pool's in-flight limit as usual (201, its use spent, its saga started), where it waits for a slot", async () => {
    const token = await app.createToken("edge", { maxUses: 10 });
    for (let i = 0; i < 3; i++) expect((await app.enrol(newNode(), token)).status).toBe(201);
    const node = newNode();
    const full = await app.enrol(node, token);
    expect(full.status).toBe(201);
    expect(full.headers["retry-after"]).toBeUndefined();
    const { nodeId } = full.json as { nodeId: string };
    // Answered as any enrolment: its mailbox and its saga, which waits for a slot before node-side work.
    expect(full.json).toMatchObject({ nodeId, pool: "edge", status: "Enrolling", mailbox: { queue: `node-${nodeId}` } });
    expect(app.simulator.getStatus(nodeId)).toMatchObject({ name: "onboardNode", input: { nodeId, pool: "edge", waitsForSlot: true } });
    expect((await registry().nodes.get(nodeId))!).toMatchObject({
      status: "Enrolling",
      slot: expect.stringMatching(new RegExp(`^slot:~w:\\d{15}:${nodeId}$`)),
    });
    expect((await registry().tokens.get(token.split(".")[1]!))!.uses).toBe(4);
    const pool = (await registry().pools.get("edge"))!;
    expect({ inFlight: pool.inFlight, waiting: pool.waiting }).toEqual({ inFlight: 3, waiting: 1 });
    // Its retry is a retry (200, the same node, nothing more spent), still waiting.
    const again = await app.enrol(node, token);
    expect([again.status, (again.json as { nodeId: string }).nodeId]).toEqual([200, nodeId]);
    expect((await registry().tokens.get(token.split(".")[1]!))!.uses).toBe(4);
    expect((await registry().pools.get("edge"))!.waiting).toBe(1);
  });

  it("parks approval-required nodes until an admin approves or rejects them", async () => {
    const token = await app.createToken("edge", { maxUses: 2, approvalRequired: true });
    const a = newNode();
    const parked = await app.enrol(a, token);
    expect(parked.status).toBe(202);
    const { nodeId } = parked.json as { nodeId: string };
    expect(parked.json).toMatchObject({ status: "AwaitingApproval", approval: "approval-required" });
    expect((parked.json as { mailbox?: unknown }).mailbox).toBeUndefined();
    expect(app.simulator.instanceIds()).toEqual([]);
    expect((await registry().pools.get("edge"))!.inFlight).toBe(0);
    expect((await app.enrol(a, token)).status).toBe(202);

    const approved = await app.call("POST", `/api/manage/nodes/${nodeId}/approve`, { headers: admin });
    expect(approved.status).toBe(200);
    expect(approved.json).toMatchObject({ status: "Enrolling" });
    expect(app.simulator.getStatus(nodeId)?.name).toBe("onboardNode");
    expect((await app.call("POST", `/api/manage/nodes/${nodeId}/approve`, { headers: admin })).status).toBe(409);

    const b = newNode();
    const other = (await app.enrol(b, token)).json as { nodeId: string };
    const rejected = await app.call("POST", `/api/manage/nodes/${other.nodeId}/reject`, { headers: admin });
    expect(rejected.json).toMatchObject({ status: "Failed", lastError: { code: "Rejected" } });
    expect(app.simulator.getStatus(other.nodeId)).toBeUndefined();
    const audit = (await registry().audit.list()).map((e) => e.action);
    expect(audit).toEqual(expect.arrayContaining(["node.approve", "node.reject", "token.create", "pool.create"]));
  });

  it("lets a Failed node with its own key enrol again, with a fresh saga under the same id", async () => {
    const token = await app.createToken("edge", { maxUses: 2 });
    const node = newNode();
    const { nodeId } = (await app.enrol(node, token)).json as { nodeId: string };
    await failOnboarding(nodeId);
    expect((await registry().pools.get("edge"))!.inFlight).toBe(0);

    const again = await app.enrol(node, token);
    expect(again.status).toBe(201);
    expect(again.json).toMatchObject({ nodeId, status: "Enrolling" });
    expect(app.simulator.getStatus(nodeId)?.runtimeStatus).toBe("Pending");
    expect((await registry().tokens.get(token.split(".")[1]!))!.uses).toBe(2);
  });

  it("sends a node an admin rejected back to the admin when it enrols again, however its token was made", async () => {
    const parkedBy = await app.createToken("edge", { maxUses: 2, approvalRequired: true });
    const node = newNode();
    const { nodeId } = (await app.enrol(node, parkedBy)).json as { nodeId: string };
    expect((await app.call("POST", `/api/manage/nodes/${nodeId}/reject`, { headers: admin })).status).toBe(200);

    // Same token, and a token that asks for no approval (a join config's, say): the rejection stands either way.
    for (const token of [parkedBy, await app.createToken("edge")]) {
      const again = await app.enrol(node, token);
      expect(again.status).toBe(202);
      expect(again.json).toMatchObject({ nodeId, status: "AwaitingApproval", approval: "approval-required" });
      expect((again.json as { mailbox?: unknown }).mailbox).toBeUndefined();
      expect(app.simulator.instanceIds()).toEqual([]);
      expect((await registry().pools.get("edge"))!.inFlight).toBe(0);
      expect(await registry().nodes.get(nodeId)).toMatchObject({ status: "AwaitingApproval", lastError: { code: "Rejected" } });
      if (token === parkedBy) expect((await app.call("POST", `/api/manage/nodes/${nodeId}/reject`, { headers: admin })).status).toBe(200);
    }

    // Only an admin lets it in; the rejection it kept for the admin to see is history then.
    const approved = await app.call("POST", `/api/manage/nodes/${nodeId}/approve`, { headers: admin });
    expect(approved.json).toMatchObject({ status: "Enrolling" });
    expect((approved.json as { lastError?: unknown }).lastError).toBeUndefined();
    expect(app.simulator.getStatus(nodeId)?.runtimeStatus).toBe("Pending");
  });

  it("refuses to approve a node enrolled again while its failed run is still finishing (409, Retry-After)", async () => {
    const token = await app.createToken("edge", { maxUses: 2, approvalRequired: true });
    const node = newNode();
    const { nodeId } = (await app.enrol(node, token)).json as { nodeId: string };
    await app.call("POST", `/api/manage/nodes/${nodeId}/approve`, { headers: admin });
    await app.simulator.runUntilIdle();
    // The run marks the node Failed just before it ends; the node enrols again in between.
    await registry().nodes.update((await registry().nodes.get(nodeId))!, () => ({ status: "Failed" }), "saga", "node.fail");
    expect((await app.enrol(node, token)).status).toBe(202);
    const early = await app.call("POST", `/api/manage/nodes/${nodeId}/approve`, { headers: admin });
    expect([early.status, early.headers["retry-after"]]).toEqual([409, "5"]);
    expect((await registry().nodes.get(nodeId))!.status).toBe("AwaitingApproval");
    app.simulator.raiseEvent(nodeId, "test-finish", "failed");
    await app.simulator.runUntilIdle();
    expect((await app.call("POST", `/api/manage/nodes/${nodeId}/approve`, { headers: admin })).status).toBe(200);
    expect(app.simulator.getStatus(nodeId)?.runtimeStatus).toBe("Pending");
  });

  it("parks a node of an approval-required token again when it enrols after failing; approval starts a fresh saga run", async () => {
    const token = await app.createToken("edge", { maxUses: 2, approvalRequired: true });
    const node = newNode();
    const { nodeId } = (await app.enrol(node, token)).json as { nodeId: string };
    await app.call("POST", `/api/manage/nodes/${nodeId}/approve`, { headers: admin });
    await failOnboarding(nodeId);
    const firstRun = app.simulator.getStatus(nodeId)!;
    expect(firstRun.runtimeStatus).not.toBe("Pending");

    const again = await app.enrol(node, token);
    expect(again.status).toBe(202);
    expect(again.json).toMatchObject({ nodeId, status: "AwaitingApproval" });
    expect(app.simulator.getStatus(nodeId)!.createdTime).toBe(firstRun.createdTime);

    expect((await app.call("POST", `/api/manage/nodes/${nodeId}/approve`, { headers: admin })).json).toMatchObject({ status: "Enrolling" });
    expect(app.simulator.getStatus(nodeId)).toMatchObject({ runtimeStatus: "Pending" });
    expect(app.simulator.getStatus(nodeId)!.input).not.toEqual(firstRun.input);
  });
});
