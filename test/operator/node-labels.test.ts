/**
 * Pool and token labels the kubelet would refuse in --node-labels (a kubernetes.io or k8s.io key it does not own) are
 * refused where an admin sets them — pool creation, pool update, token creation — as a validation problem naming the
 * field, instead of nodes whose kubelet exits at start and a saga that times out without a reason.
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

const REFUSED = ["node-role.kubernetes.io/worker", "kubernetes.io/role", "k8s.io/x", "foo.k8s.io/x", "node-restriction.kubernetes.io/x"];
const ACCEPTED = {
  "node.kubernetes.io/instance-type": "edge-small",
  "kubelet.kubernetes.io/x": "y",
  "topology.kubernetes.io/zone": "store-12",
  "example.com/role": "edge",
  team: "",
};

const pointer = (field: string, key: string) => `/${field}/${key.replace(/~/g, "~0").replace(/\//g, "~1")}`;
const spec = (nodeLabels: Record<string, string>) => ({ clusterResourceId: CLUSTER_ID, arc: { resourceGroupId: ARC_RG, location: "eastus" }, nodeLabels });

function expectRefused(res: { status: number; headers: Record<string, string>; json: unknown }, path: string): void {
  const body = res.json as { type: string; errors: { path: string; message: string }[] };
  expect([res.status, res.headers["content-type"], body.type]).toEqual([422, "application/problem+json", "https://flexnode.dev/problems/validation-failed"]);
  expect(body.errors).toEqual([{ path, message: expect.stringMatching(/kubelet refuses .*use your own prefix such as example\.com\/role/) }]);
}

describe("node labels the kubelet would refuse", () => {
  it.each(REFUSED)("pool creation refuses nodeLabels %s, naming the field; nothing is stored", async (key) => {
    const before = await app.snapshot();
    expectRefused(await app.createPool("refused", { nodeLabels: { team: "a", [key]: "" } }), pointer("nodeLabels", key));
    expect(await app.snapshot()).toBe(before);
  });

  it.each(REFUSED)("pool update refuses nodeLabels %s, naming the field; the pool is unchanged", async (key) => {
    const name = `upd-${REFUSED.indexOf(key)}`;
    expect((await app.createPool(name, { nodeLabels: { team: "a" } })).status).toBe(201);
    const before = await app.snapshot();
    expectRefused(await app.call("PUT", `/api/manage/pools/${name}`, { headers: admin, body: spec({ team: "b", [key]: "" }) }), pointer("nodeLabels", key));
    expect(await app.snapshot()).toBe(before);
  });

  it.each(REFUSED)("token creation refuses labels %s, naming the field; no token is minted", async (key) => {
    const name = `tok-${REFUSED.indexOf(key)}`;
    expect((await app.createPool(name)).status).toBe(201);
    const before = await app.snapshot();
    expectRefused(await app.call("POST", `/api/manage/pools/${name}/tokens`, { headers: admin, body: { labels: { [key]: "" } } }), pointer("labels", key));
    expect(await app.snapshot()).toBe(before);
  });

  it("accepts the labels the kubelet owns or leaves to others, at creation, update and on a token", async () => {
    const created = await app.createPool("accepted", { nodeLabels: ACCEPTED });
    expect([created.status, (created.json as { nodeLabels: unknown }).nodeLabels]).toEqual([201, ACCEPTED]);
    const updated = await app.call("PUT", "/api/manage/pools/accepted", { headers: admin, body: spec({ ...ACCEPTED, "kubernetes.io/os": "linux" }) });
    expect([updated.status, (updated.json as { nodeLabels: unknown }).nodeLabels]).toEqual([200, { ...ACCEPTED, "kubernetes.io/os": "linux" }]);
    const token = await app.call("POST", "/api/manage/pools/accepted/tokens", { headers: admin, body: { labels: ACCEPTED } });
    expect([token.status, (token.json as { labels: unknown }).labels]).toEqual([201, ACCEPTED]);
  });
});
