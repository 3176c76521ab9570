/**
 * A node's labels are its pool's merged with its token's, stored as one JSON string property: each side is capped
 * (64 labels, 32 taints) but their sum was not, and a token that took a node over the caps failed every enrolment with
 * a 5xx (Azurite: 400 PropertyValueTooLarge on the node row). Token creation refuses such a token (422 naming the
 * field); enrolment refuses, as a problem and having spent nothing, a token a later pool update took over the caps.
 */
import { afterEach, beforeEach, describe, expect, inject, it } from "vitest";
import { Registry } from "../../orchestrations/clients/registry/registry.js";
import { mergeNodeLabels, nodeLabelBudgetIssues, MAX_NODE_LABELS } from "../../orchestrations/use-cases/node-label-budget.js";
import { admin, newNode, startApp, type TestApp, useStandInSaga } from "../function-app/index.js";

useStandInSaga();

let app: TestApp;
beforeEach(async () => {
  app = await startApp();
});
afterEach(async () => {
  await app.close();
});

const registry = () => new Registry({ connectionString: inject("azuriteConnectionString"), prefix: app.prefix });
/** Label keys of the longest kind (253-character prefix, 63-character name), `tag` keeping two sets apart. */
const key = (tag: string, i: number) =>
  `${"a".repeat(60)}.${"b".repeat(60)}.${"c".repeat(60)}.${"d".repeat(54)}${tag}${String(i).padStart(4, "0")}.io/${"n".repeat(59)}${String(i).padStart(4, "0")}`;
const labels = (tag: string, n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [key(tag, i), "v".repeat(63)]));
const taints = (tag: string, n: number) => Array.from({ length: n }, (_, i) => ({ key: key(tag, i), value: "v", effect: "NoSchedule" as const }));
const problem = (res: { json: unknown }) => res.json as { type: string; status: number; detail?: string; errors?: { path: string; message: string }[] };

describe("the label budget rule", () => {
  it("fits 64 labels of the longest keys and values in one property; 128 would not", () => {
    const full = labels("p", MAX_NODE_LABELS);
    expect(JSON.stringify(full).length).toBeLessThan(32 * 1024);
    expect(JSON.stringify(mergeNodeLabels(full, labels("t", MAX_NODE_LABELS))).length).toBeGreaterThan(32 * 1024);
  });

  it("counts a key both sides set once (the token's value wins)", () => {
    const pool = labels("p", 40);
    const token = { ...labels("p", 20), ...labels("t", 24) };
    expect(Object.keys(mergeNodeLabels(pool, token))).toHaveLength(64);
    expect(nodeLabelBudgetIssues({ labels: pool, taints: [] }, { labels: token, taints: [] })).toEqual([]);
    expect(nodeLabelBudgetIssues({ labels: pool, taints: [] }, { labels: { ...token, extra: "x" }, taints: [] })).toEqual([
      { field: "labels", message: expect.stringContaining("a node would carry 65 labels") },
    ]);
  });
});

describe("token creation", () => {
  it("refuses labels that with the pool's exceed 64 (422 naming labels); no token is minted", async () => {
    expect((await app.createPool("edge", { nodeLabels: labels("p", 45) })).status).toBe(201);
    const before = await app.snapshot();
    const res = await app.call("POST", "/api/manage/pools/edge/tokens", { headers: admin, body: { labels: labels("t", 45) } });
    expect(res.status).toBe(422);
    expect(res.headers?.["content-type"]).toBe("application/problem+json");
    expect(problem(res)).toMatchObject({
      type: "https://flexnode.dev/problems/validation-failed",
      errors: [{ path: "/labels", message: expect.stringMatching(/pool's 45 node labels, a node would carry 90 labels; at most 64.*at most 19 keys/) }],
    });
    expect(await app.snapshot()).toBe(before);
    // Within the budget, and overriding pool keys (which add nothing), it is minted.
    await app.createToken("edge", { labels: { ...labels("t", 19), ...labels("p", 45) } });
  });

  it("refuses taints that with the pool's exceed 32 (a node row's taints are read back under that cap), naming taints", async () => {
    expect((await app.createPool("tainted", { nodeTaints: taints("p", 20) })).status).toBe(201);
    const res = await app.call("POST", "/api/manage/pools/tainted/tokens", { headers: admin, body: { taints: taints("t", 13) } });
    expect(res.status).toBe(422);
    expect(problem(res).errors).toEqual([{ path: "/taints", message: expect.stringContaining("a node would carry 33 taints") }]);
    await app.createToken("tainted", { taints: taints("t", 12) });
  });
});

describe("enrolment with a token a pool update took over the budget", () => {
  it("is refused with a problem (409), spending nothing; after the pool is trimmed the node enrols", async () => {
    expect((await app.createPool("edge", { nodeLabels: labels("p", 10) })).status).toBe(201);
    const token = await app.createToken("edge", { labels: labels("t", 45), maxUses: 2 });
    // An admin adds labels to the pool since (pool update does not yet look at its tokens).
    const spec = (await registry().pools.get("edge"))!;
    const { name: _n, inFlight: _i, waiting: _w, createdAt: _c, updatedAt: _u, etag: _e, ...rest } = spec;
    await registry().pools.update("edge", { ...rest, nodeLabels: labels("p", 45) }, "admin");

    const node = newNode();
    const refused = await app.enrol(node, token);
    expect(refused.status).toBe(409);
    expect(refused.headers?.["content-type"]).toBe("application/problem+json");
    expect(problem(refused).detail).toMatch(/labels: with the pool's 45 node labels, a node would carry 90 labels/);
    expect((await registry().tokens.list()).items[0]!.uses).toBe(0);
    expect((await registry().nodes.list({ pool: "edge" })).items).toEqual([]);
    expect((await registry().pools.get("edge"))!).toMatchObject({ inFlight: 0, waiting: 0 });
    // Asked again, the same answer (not a 5xx, not a half-enrolled node).
    expect((await app.enrol(node, token)).status).toBe(409);

    await registry().pools.update("edge", { ...rest, nodeLabels: labels("p", 19) }, "admin");
    const enrolled = await app.enrol(node, token);
    expect(enrolled.status).toBe(201);
    const { nodeId } = enrolled.json as { nodeId: string };
    expect(Object.keys((await registry().nodes.get(nodeId))!.labels)).toHaveLength(64);
  });

  it("is refused the same way for taints over 32 (the node row would be written, then fail to read back)", async () => {
    expect((await app.createPool("edge", { nodeTaints: taints("p", 10) })).status).toBe(201);
    const token = await app.createToken("edge", { taints: taints("t", 13) });
    const spec = (await registry().pools.get("edge"))!;
    const { name: _n, inFlight: _i, waiting: _w, createdAt: _c, updatedAt: _u, etag: _e, ...rest } = spec;
    await registry().pools.update("edge", { ...rest, nodeTaints: taints("p", 20) }, "admin");
    const refused = await app.enrol(newNode(), token);
    expect(refused.status).toBe(409);
    expect(problem(refused).detail).toMatch(/taints: with the pool's 20 node taints, a node would carry 33 taints/);
    expect((await registry().nodes.list({ pool: "edge" })).items).toEqual([]);
  });

  it("still answers a node enrolled before the update (a retry is not a new node)", async () => {
    expect((await app.createPool("edge", { nodeLabels: labels("p", 10) })).status).toBe(201);
    const token = await app.createToken("edge", { labels: labels("t", 45), maxUses: 2 });
    const node = newNode();
    expect((await app.enrol(node, token)).status).toBe(201);
    const spec = (await registry().pools.get("edge"))!;
    const { name: _n, inFlight: _i, waiting: _w, createdAt: _c, updatedAt: _u, etag: _e, ...rest } = spec;
    await registry().pools.update("edge", { ...rest, nodeLabels: labels("p", 45) }, "admin");
    expect((await app.enrol(node, token)).status).toBe(200);
  });
});
