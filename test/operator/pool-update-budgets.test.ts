/**
 * A pool update is refused, naming the field, when what it asks could not work: labels or taints that, with those of a
 * token still usable, would not fit on a node (every enrolment with the token would be refused), or a spec whose row
 * Azure Tables would refuse (a string property over 32,768 characters). Nothing is stored either way.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { admin, ARC_RG, CLUSTER_ID, startApp, type TestApp, useStandInSaga } from "../function-app/index.js";

useStandInSaga();

let app: TestApp;
beforeAll(async () => {
  app = await startApp();
});
afterAll(async () => {
  await app.close();
});

const errorsOf = (res: { json: unknown }) => (res.json as { errors: { path: string; message: string }[] }).errors;
const labels = (n: number, prefix: string) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`${prefix}${i}`, "v"]));
const spec = (extra: Record<string, unknown> = {}) => ({ clusterResourceId: CLUSTER_ID, arc: { resourceGroupId: ARC_RG, location: "eastus" }, ...extra });

async function update(pool: string, body: Record<string, unknown>) {
  const got = await app.call("GET", `/api/manage/pools/${pool}`, { headers: admin });
  return app.call("PUT", `/api/manage/pools/${pool}`, { headers: { ...admin, "if-match": got.headers["etag"]! }, body });
}

describe("pool update", () => {
  it("refuses labels that would strand a usable token's enrolments, naming the token; a revoked token does not count", async () => {
    expect((await app.createPool("lab", { nodeLabels: labels(10, "p") })).status).toBe(201);
    const created = await app.call("POST", "/api/manage/pools/lab/tokens", { headers: admin, body: { labels: labels(40, "t") } });
    expect(created.status).toBe(201);
    const tokenId = (created.json as { tokenId: string }).tokenId;

    const before = await app.snapshot();
    const refused = await update("lab", spec({ nodeLabels: labels(30, "p") }));
    expect(refused.status).toBe(422);
    expect(errorsOf(refused)).toEqual([{ path: "/nodeLabels", message: expect.stringContaining(tokenId) }]);
    expect(await app.snapshot()).toBe(before);

    expect((await app.call("POST", `/api/manage/tokens/${tokenId}/revoke`, { headers: admin })).status).toBe(200);
    expect((await update("lab", spec({ nodeLabels: labels(30, "p") }))).status).toBe(200);
  });

  it("refuses a spec whose row Azure Tables would refuse, on create and on update, storing nothing", async () => {
    // 47 tags at ARM's limits are valid Arc tags, but ~36,000 characters as one JSON property.
    const tags = Object.fromEntries(Array.from({ length: 47 }, (_, i) => [`${String(i).padStart(2, "0")}${"n".repeat(510)}`, "v".repeat(256)]));
    const before = await app.snapshot();
    const create = await app.createPool("huge", { arc: { resourceGroupId: ARC_RG, location: "eastus", tags } });
    expect(create.status).toBe(422);
    expect(errorsOf(create)).toEqual([{ path: "/arc/tags", message: expect.stringMatching(/too long to store/) }]);
    expect(await app.snapshot()).toBe(before);

    expect((await app.createPool("small")).status).toBe(201);
    const refused = await update("small", { clusterResourceId: CLUSTER_ID, arc: { resourceGroupId: ARC_RG, location: "eastus", tags } });
    expect(refused.status).toBe(422);
    expect(errorsOf(refused)[0]?.path).toBe("/arc/tags");
  });
});
