/**
 * Pool capacity and the storage cost of enrolment (issue 16): the pool's in-flight limit holds under concurrent
 * enrolments, a slot freed by a node that leaves in-flight admits the next node, and an enrolment (first time and
 * retried) costs a bounded number of registry requests, counted on the wire to Azurite.
 */
import { afterEach, beforeEach, describe, expect, inject, it } from "vitest";
import { HttpCensus } from "../../bench/support/http-census.js";
import { Registry } from "../../orchestrations/clients/registry/registry.js";
import { newNode, startApp, type TestApp, useStandInSaga } from "../function-app/index.js";

useStandInSaga();

let app: TestApp;
beforeEach(async () => {
  app = await startApp();
});
afterEach(async () => {
  await app.close();
});

const registry = () => new Registry({ connectionString: inject("azuriteConnectionString"), prefix: app.prefix });
const tableHost = () => new URL(/TableEndpoint=([^;]+)/.exec(inject("azuriteConnectionString"))![1]!).host;

describe("pool capacity", () => {
  it("admits exactly maxInFlight of 64 concurrent enrolments and answers the rest 429, giving their token uses back", async () => {
    expect((await app.createPool("edge", { maxInFlight: 5 })).status).toBe(201);
    const enrolments = await Promise.all(
      Array.from({ length: 64 }, async () => {
        const token = await app.createToken("edge");
        return { token, node: newNode() };
      }),
    );
    const answers = await Promise.all(enrolments.map(({ node, token }) => app.enrol(node, token)));
    const statuses = answers.map((a) => a.status).sort();
    expect(statuses.filter((s) => s === 201)).toHaveLength(5);
    expect(statuses.filter((s) => s === 429)).toHaveLength(59);
    expect((await registry().pools.get("edge"))!.inFlight).toBe(5);
    const enrolling = (await registry().nodes.list({ pool: "edge", maxPageSize: 100 })).items;
    expect(enrolling).toHaveLength(5);
    // Each admitted node holds its own slot.
    expect(new Set(enrolling.map((n) => n.slot)).size).toBe(5);
    const uses = await Promise.all(enrolments.map(({ token }) => registry().tokens.get(token.split(".")[1]!)));
    expect(uses.reduce((sum, t) => sum + t!.uses, 0)).toBe(5);
  });

  it("admits again once nodes leave in-flight: Ready, Failed and Offboarded each free their slot", async () => {
    expect((await app.createPool("edge", { maxInFlight: 2 })).status).toBe(201);
    const enrol = async () => app.enrol(newNode(), await app.createToken("edge"));
    const [a, b] = [await enrol(), await enrol()];
    expect([a.status, b.status]).toEqual([201, 201]);
    expect((await enrol()).status).toBe(429);

    const move = async (res: { json: unknown }, status: "Ready" | "Failed" | "Offboarding" | "Offboarded") => {
      const { nodeId } = res.json as { nodeId: string };
      await registry().nodes.update((await registry().nodes.get(nodeId))!, () => ({ status }), "test", `node.${status.toLowerCase()}`);
    };
    await move(a, "Ready");
    const c = await enrol();
    expect(c.status).toBe(201);
    expect((await enrol()).status).toBe(429);

    await move(b, "Failed");
    const d = await enrol();
    expect(d.status).toBe(201);

    // Offboarding holds a slot (never refused), Offboarded frees it.
    await move(a, "Offboarding");
    expect((await registry().pools.get("edge"))!.inFlight).toBe(3);
    await move(c, "Ready");
    expect((await enrol()).status).toBe(429);
    await move(a, "Offboarded");
    expect((await registry().pools.get("edge"))!.inFlight).toBe(1);
    expect((await enrol()).status).toBe(201);
    expect((await registry().pools.get("edge"))!.inFlight).toBe(2);
  });
});

describe("registry requests per enrolment", () => {
  it("costs at most 6 requests for a first-time enrolment and 3 for its retry", async () => {
    expect((await app.createPool("edge", { maxInFlight: 10 })).status).toBe(201);
    const token = await app.createToken("edge");
    const node = newNode();
    const census = new HttpCensus();
    try {
      const first = census.count(tableHost());
      expect((await app.enrol(node, token)).status).toBe(201);
      const firstTime = census.count(tableHost()) - first;
      const again = census.count(tableHost());
      expect((await app.enrol(node, token)).status).toBe(200);
      const retry = census.count(tableHost()) - again;
      expect({ firstTime, retry }).toEqual({ firstTime: expect.any(Number), retry: expect.any(Number) });
      expect(firstTime).toBeLessThanOrEqual(6);
      expect(retry).toBeLessThanOrEqual(3);
    } finally {
      census.close();
    }
  });

  it("refuses in a pool this process saw full for 5 requests, writing only the nonce; a node already in answers 200 with a token that has uses left", async () => {
    expect((await app.createPool("edge", { maxInFlight: 1 })).status).toBe(201);
    const shared = await app.createToken("edge", { maxUses: 10 });
    const inside = newNode();
    expect((await app.enrol(inside, shared)).status).toBe(201);
    // The first refusal is the one that finds the pool full (and leaves this process knowing it).
    expect((await app.enrol(newNode(), shared)).status).toBe(429);
    const before = (await app.snapshot()).split("\n");
    const census = new HttpCensus();
    try {
      const start = census.count(tableHost());
      const refused = await app.enrol(newNode(), shared);
      expect(refused.status).toBe(429);
      expect(refused.headers["retry-after"]).toBe("30");
      expect(census.count(tableHost()) - start).toBeLessThanOrEqual(5);
    } finally {
      census.close();
    }
    // Only the request's nonce was written: no key binding, no token use, no node.
    const after = (await app.snapshot()).split("\n");
    const changed = after.filter((row) => !before.includes(row));
    expect(changed).toHaveLength(1);
    expect(changed[0]).toMatch(/^index:.*"rowKey":"nonce:/);
    expect(before.filter((row) => !after.includes(row))).toEqual([]);
    expect((await registry().tokens.get(shared.split(".")[1]!))!.uses).toBe(1);
    // The node that is in retries with the same token, which has uses left: it is answered as before, not refused.
    expect((await app.enrol(inside, shared)).status).toBe(200);
  });
});
