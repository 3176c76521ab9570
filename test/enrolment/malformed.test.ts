import fc from "fast-check";
import type { z } from "zod";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EnrolBody } from "../../functions/enrol.js";
import { CreatePool } from "../../functions/manage-pools.js";
import { CreateToken } from "../../functions/manage-tokens.js";
import { PoolSpec } from "../../orchestrations/clients/registry/model.js";
import { admin, ARC_RG, CLUSTER_ID, newNode, startApp, type TestApp, useStandInSaga } from "../function-app/index.js";

useStandInSaga();

let app: TestApp;
let before: string;
let tokenId: string;
let nodeId: string;

beforeAll(async () => {
  app = await startApp();
  await app.createPool("edge");
  const token = await app.createToken("edge", { maxUses: 5 });
  tokenId = token.split(".")[1]!;
  nodeId = ((await app.enrol(newNode(), token)).json as { nodeId: string }).nodeId;
  before = await app.snapshot();
});
afterAll(async () => {
  await app.close();
});

const validEnrol = () => ({ token: `fnt.${"0".repeat(16)}.${"A".repeat(43)}`, facts: newNode().facts, publicKey: newNode().publicKey });
const validPool = { clusterResourceId: CLUSTER_ID, arc: { resourceGroupId: ARC_RG, location: "eastus" } };

interface WriteRoute {
  method: string;
  path: string;
  /** The route's own body schema: what it refuses is what the property throws at it. */
  schema: z.ZodType;
  valid: () => Record<string, unknown>;
}
const WRITE_ROUTES: WriteRoute[] = [
  { method: "POST", path: "/api/enrol", schema: EnrolBody, valid: validEnrol },
  { method: "POST", path: "/api/manage/pools", schema: CreatePool, valid: () => ({ ...validPool, name: "new-pool" }) },
  { method: "PUT", path: "/api/manage/pools/edge", schema: PoolSpec, valid: () => ({ ...validPool }) },
  { method: "POST", path: "/api/manage/pools/edge/tokens", schema: CreateToken, valid: () => ({ maxUses: 2, labels: { rack: "r4" } }) },
];

/** A valid body with one field, at any depth, replaced by an arbitrary JSON value (or removed). */
function mutated(valid: () => Record<string, unknown>): fc.Arbitrary<unknown> {
  const paths: string[][] = [];
  const walk = (v: unknown, path: string[]) => {
    paths.push(path);
    if (v && typeof v === "object" && !Array.isArray(v)) for (const [k, child] of Object.entries(v)) walk(child, [...path, k]);
  };
  walk(valid(), []);
  return fc
    .tuple(fc.constantFrom(...paths.filter((p) => p.length > 0)), fc.oneof(fc.jsonValue(), fc.constant(undefined)), fc.string())
    .map(([path, value, extraKey]) => {
      const body = structuredClone(valid());
      let target = body as Record<string, unknown>;
      for (const k of path.slice(0, -1)) target = target[k] as Record<string, unknown>;
      if (value === undefined) delete target[path.at(-1)!];
      else target[path.at(-1)!] = value;
      // Sometimes also smuggle in an unknown field; strict schemas must refuse it.
      if (extraKey.length > 3) (body as Record<string, unknown>)[`x-${extraKey}`] = 1;
      return body;
    });
}

async function expectRefused(route: WriteRoute, raw: string, contentType = "application/json"): Promise<void> {
  const res = await app.call(route.method, route.path, { headers: { ...admin, "content-type": contentType }, rawBody: raw });
  expect(res.status, `${route.method} ${route.path} answered ${res.status} to ${raw.slice(0, 200)}`).toBeGreaterThanOrEqual(400);
  expect(res.status).toBeLessThan(500);
  expect(res.headers["content-type"]).toBe("application/problem+json");
  const problem = res.json as { type: string; title: string; status: number; errors?: { path: string; message: string }[] };
  expect(problem.type).toMatch(/^https:\/\/flexnode\.dev\/problems\/[a-z-]+$/);
  expect(problem.title.length).toBeGreaterThan(0);
  expect(problem.status).toBe(res.status);
  if (res.status === 422) expect(problem.errors!.length).toBeGreaterThan(0);
}

describe("malformed requests are refused with a problem and change nothing", () => {
  for (const route of WRITE_ROUTES) {
    it(`${route.method} ${route.path}: generated malformed bodies`, async () => {
      const bodies = fc.oneof(
        { weight: 3, arbitrary: mutated(route.valid) },
        { weight: 1, arbitrary: fc.jsonValue() },
        { weight: 1, arbitrary: fc.string().map((s) => ({ __raw: s })) },
      );
      await fc.assert(
        fc.asyncProperty(bodies, async (body) => {
          if (body && typeof body === "object" && "__raw" in body) {
            const raw = (body as { __raw: string }).__raw;
            fc.pre(!isJson(raw));
            return expectRefused(route, raw);
          }
          // Only bodies the route's own schema refuses: a valid body may legitimately write.
          fc.pre(!route.schema.safeParse(body).success);
          return expectRefused(route, JSON.stringify(body));
        }),
        { numRuns: 120, seed: 20261121 },
      );
      expect(await app.snapshot()).toBe(before);
    });
  }

  it("answers 415 to non-JSON content, 413 past 64 KiB, 400 to broken JSON, on every write route", async () => {
    for (const route of WRITE_ROUTES) {
      const json = JSON.stringify(route.valid());
      const wrongType = await app.call(route.method, route.path, { headers: { ...admin, "content-type": "text/plain" }, rawBody: json });
      expect([wrongType.status, (wrongType.json as { type: string }).type]).toEqual([415, "https://flexnode.dev/problems/unsupported-media-type"]);
      const huge = await app.call(route.method, route.path, {
        headers: { ...admin, "content-type": "application/json" },
        rawBody: JSON.stringify({ pad: "x".repeat(65 * 1024) }),
      });
      expect(huge.status).toBe(413);
      const broken = await app.call(route.method, route.path, { headers: { ...admin, "content-type": "application/json" }, rawBody: json.slice(0, -1) });
      expect([broken.status, (broken.json as { type: string }).type]).toEqual([400, "https://flexnode.dev/problems/malformed-json"]);
      const notUtf8 = await app.call(route.method, route.path, {
        headers: { ...admin, "content-type": "application/json" },
        rawBody: new Uint8Array([0x7b, 0xff, 0x7d]),
      });
      expect(notUtf8.status).toBe(400);
    }
    expect(await app.snapshot()).toBe(before);
  });

  it("names each failing field in a validation problem", async () => {
    const body = validEnrol();
    (body.facts as Record<string, unknown>).machineId = "not-hex";
    (body.facts as Record<string, unknown>).cpus = 0;
    const res = await app.call("POST", "/api/enrol", { body });
    expect(res.status).toBe(422);
    expect((res.json as { errors: { path: string }[] }).errors.map((e) => e.path).sort()).toEqual(["/facts/cpus", "/facts/machineId"]);
  });

  it("refuses malformed ids on the body-less admin writes without touching anything", async () => {
    for (const path of ["/api/manage/tokens/NOT-A-TOKEN/revoke", "/api/manage/nodes/fn-xyz/approve", "/api/manage/nodes/..%2F..%2Fpools/reject"]) {
      const res = await app.call("POST", path, { headers: admin });
      expect([400, 404]).toContain(res.status);
    }
    expect((await app.call("POST", `/api/manage/tokens/${"f".repeat(16)}/revoke`, { headers: admin })).status).toBe(404);
    expect((await app.call("POST", `/api/manage/nodes/${nodeId}/approve`, { headers: admin })).status).toBe(409);
    expect(tokenId).toMatch(/^[0-9a-f]{16}$/);
    expect(await app.snapshot()).toBe(before);
  });
});

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}
