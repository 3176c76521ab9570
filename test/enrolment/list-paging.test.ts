/**
 * Every list route takes a `continuationToken` from the caller. Before validation at the boundary, any token that was
 * not base64 of the Tables SDK's JSON made the SDK throw while decoding it, and every list route answered 500 (the
 * only 5xx a 1,800-request fuzz found). The routes are found from the route table, so a new list route is covered.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROUTES } from "../../functions/http/route.js";
import { admin, newNode, startApp, type TestApp, useStandInSaga } from "../function-app/index.js";

useStandInSaga();

let app: TestApp;
beforeAll(async () => {
  app = await startApp();
  for (const pool of ["edge", "core", "lab"]) await app.createPool(pool);
  for (let i = 0; i < 3; i++) await app.enrol(newNode(), await app.createToken("edge"));
});
afterAll(async () => {
  await app.close();
});

const listPaths = () =>
  ROUTES.filter((r) => r.method === "GET" && r.query && "shape" in r.query && "continuationToken" in (r.query.shape as object)).map((r) => `/api/${r.route}`);
const b64 = (s: string) => Buffer.from(s, "latin1").toString("base64");
const query = (token: string) => `?pageSize=1&continuationToken=${encodeURIComponent(token)}`;

describe("continuationToken on every list route", () => {
  it("finds the list routes", () => {
    expect(listPaths().sort()).toEqual(["/api/manage/nodes", "/api/manage/pools", "/api/manage/tokens"]);
  });

  it("answers a malformed token with a 400 problem naming the field", async () => {
    for (const path of listPaths()) {
      for (const token of ["abc", "not-base64-json", b64("{"), b64("[]"), b64('{"nextPartitionKey":7}'), b64("null")]) {
        const res = await app.call("GET", path + query(token), { headers: admin });
        expect([path, token, res.status]).toEqual([path, token, 400]);
        expect(res.headers["content-type"]).toBe("application/problem+json");
        expect((res.json as { errors: { path: string }[] }).errors.map((e) => e.path)).toEqual(["/query/continuationToken"]);
      }
    }
  });

  it("still pages through with the tokens it hands out", async () => {
    for (const path of listPaths()) {
      const seen: unknown[] = [];
      let token: string | undefined;
      for (let i = 0; i < 20; i++) {
        const res = await app.call("GET", path + (token ? query(token) : "?pageSize=1"), { headers: admin });
        expect(res.status).toBe(200);
        const page = res.json as { items: unknown[]; continuationToken?: string };
        seen.push(...page.items);
        token = page.continuationToken;
        if (!token) break;
      }
      expect(seen.length, path).toBe(3);
    }
  });

  it("never answers 5xx, whatever the token (generated)", async () => {
    const tokens = fc.oneof(
      fc.string({ maxLength: 64 }),
      fc.base64String({ maxLength: 64 }),
      fc.jsonValue().map((v) => b64(JSON.stringify(v))),
      fc
        .record({ nextPartitionKey: fc.string({ maxLength: 40 }), nextRowKey: fc.option(fc.string({ maxLength: 40 }), { nil: undefined }) })
        .map((v) => b64(JSON.stringify(v))),
    );
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...listPaths()), tokens, async (path, token) => {
        const res = await app.call("GET", path + query(token), { headers: admin });
        expect(res.status, `${path} ${JSON.stringify(token)}: ${res.body}`).toBeLessThan(500);
        if (res.status >= 400) expect(res.headers["content-type"]).toBe("application/problem+json");
      }),
      { numRuns: 150, seed: 20261205 },
    );
  });
});
