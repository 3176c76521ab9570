import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { bootstrapTokenSecret, KubeApiError, KubeClient, nodeSecretsSelector, type SecretSpec } from "../../orchestrations/clients/kube/index.js";
import { rawRequest, startCluster, type Cluster, ADMIN_TOKEN } from "./test-fixtures.js";
import { KubeEmulator } from "./index.js";

const HOUR = 3_600_000;

describe("Secrets through the real client", () => {
  let cluster: Cluster;
  beforeEach(async () => {
    cluster = await startCluster();
  });
  afterEach(() => cluster.close());

  function tokenSecret(nodeId = "fn-0123456789abcdef01234567") {
    return bootstrapTokenSecret({ pool: "gpu", nodeId, expiresAt: new Date(cluster.clock.now() + HOUR) });
  }

  it("round-trips a bootstrap-token Secret: stringData goes in, decoded data and labels come out", async () => {
    const issued = tokenSecret();
    expect(await cluster.client.createSecret("kube-system", issued.secret)).toBe("created");

    const read = await cluster.client.getSecret("kube-system", issued.secret.name);
    expect(read).toEqual({
      name: `bootstrap-token-${issued.tokenId}`,
      type: "bootstrap.kubernetes.io/token",
      data: issued.secret.stringData,
      labels: issued.secret.labels,
    });
    // Stored as the API server stores it: base64 data, no stringData; the log never shows the secret.
    const [stored] = cluster.emulator.inspect().secrets;
    expect(stored).toMatchObject({ namespace: "kube-system", data: { "token-secret": issued.token.split(".")[1] } });
    const raw = await rawRequest(cluster.running, "GET", `/api/v1/namespaces/kube-system/secrets/${issued.secret.name}`, { token: ADMIN_TOKEN });
    expect(raw.body).not.toHaveProperty("stringData");
    expect((raw.body["data"] as Record<string, string>)["token-id"]).toBe(Buffer.from(issued.tokenId).toString("base64"));
    expect(raw.body["metadata"]).toMatchObject({
      name: issued.secret.name,
      namespace: "kube-system",
      uid: expect.any(String),
      resourceVersion: expect.any(String),
      creationTimestamp: "2030-01-01T00:00:00Z",
    });
    expect(JSON.stringify(cluster.emulator.requests.entries)).not.toContain(issued.token.split(".")[1]);
  });

  it("answers a second create of the same Secret with exists, and a second delete with absent", async () => {
    const issued = tokenSecret();
    expect(await cluster.client.createSecret("kube-system", issued.secret)).toBe("created");
    expect(await cluster.client.createSecret("kube-system", issued.secret)).toBe("exists");
    expect(await cluster.client.deleteSecret("kube-system", issued.secret.name)).toBe("deleted");
    expect(await cluster.client.deleteSecret("kube-system", issued.secret.name)).toBe("absent");
    expect(await cluster.client.getSecret("kube-system", issued.secret.name)).toBeUndefined();
    expect(cluster.emulator.inspect().secrets).toEqual([]);
    expect(cluster.emulator.requests.entries.map((e) => `${e.route} ${e.status} ${e.reason ?? ""}`.trim())).toEqual([
      "secrets.create 201",
      "secrets.create 409 AlreadyExists",
      "secrets.delete 200",
      "secrets.delete 404 NotFound",
      "secrets.get 404 NotFound",
    ]);
  });

  const badFields: [string, (s: SecretSpec) => void, string][] = [
    ["token-id", (s) => (s.stringData["token-id"] = "ABC123"), "data[token-id]"],
    ["token-secret", (s) => (s.stringData["token-secret"] = "short"), "data[token-secret]"],
    ["expiration", (s) => (s.stringData["expiration"] = "tomorrow"), "data[expiration]"],
    ["missing expiration", (s) => delete s.stringData["expiration"], "data[expiration]"],
    ["auth-extra-groups", (s) => (s.stringData["auth-extra-groups"] = "system:bootstrappers:ok,system:masters"), "data[auth-extra-groups]"],
    ["name", (s) => (s.name = "bootstrap-token-zzzzzz"), "metadata.name"],
    ["label", (s) => (s.labels = { "flexnode.dev/node-id": "not a label value" }), "metadata.labels"],
  ];
  it.each(badFields)("refuses a bootstrap-token Secret with a bad %s with 422 Invalid", async (_what, spoil, field) => {
    const { secret } = tokenSecret();
    spoil(secret);
    const error = await cluster.client.createSecret("kube-system", secret).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KubeApiError);
    expect(error).toMatchObject({ status: 422, reason: "Invalid" });
    const causes = (error as KubeApiError).details?.["details"] as { causes: { field: string }[] };
    expect(causes.causes.map((c) => c.field)).toContain(field);
    expect(cluster.emulator.inspect().secrets).toEqual([]);
  });

  it("refuses a bootstrap-token Secret outside kube-system, and any Secret in a namespace that does not exist", async () => {
    const { secret } = tokenSecret();
    await expect(cluster.client.createSecret("default", secret)).rejects.toMatchObject({ status: 422, reason: "Invalid" });
    const opaque = { name: "x", type: "Opaque", stringData: { a: "b" } };
    await expect(cluster.client.createSecret("nope", opaque)).rejects.toMatchObject({
      status: 404,
      reason: "NotFound",
      message: expect.stringContaining('namespaces "nope" not found'),
    });
    expect(await cluster.client.createSecret("default", opaque)).toBe("created");
  });

  it("lists by label selector, following continue tokens across pages", async () => {
    const paged = cluster.clientWith(ADMIN_TOKEN, { listPageSize: 2 });
    const mine = [tokenSecret("fn-a"), tokenSecret("fn-a"), tokenSecret("fn-a"), tokenSecret("fn-a"), tokenSecret("fn-a")];
    for (const s of [...mine, tokenSecret("fn-b")]) await cluster.client.createSecret("kube-system", s.secret);
    await cluster.client.createSecret("kube-system", { name: "unrelated", type: "Opaque", stringData: { k: "v" } });

    const listed = await paged.listSecrets("kube-system", nodeSecretsSelector("fn-a"));
    expect(listed.map((s) => s.name).sort()).toEqual(mine.map((s) => s.secret.name).sort());
    expect(listed[0]?.labels).toMatchObject({ "flexnode.dev/node-id": "fn-a", "app.kubernetes.io/managed-by": "flexnode-onboarding" });
    expect(cluster.emulator.requests.filter({ route: "secrets.list" })).toHaveLength(3);

    expect(await cluster.client.listSecrets("kube-system", "flexnode.dev/node-id in (fn-b, fn-c)")).toHaveLength(1);
    expect(await cluster.client.listSecrets("kube-system", "flexnode.dev/node-id notin (fn-a),flexnode.dev/pool")).toHaveLength(1);
    expect(await cluster.client.listSecrets("kube-system", "!flexnode.dev/pool")).toEqual([{ name: "unrelated", labels: {} }]);
    expect(await cluster.client.listSecrets("kube-system", "flexnode.dev/node-id!=fn-a")).toHaveLength(2);
    expect(await cluster.client.listSecrets("kube-public", "")).toEqual([]);
    await expect(cluster.client.listSecrets("kube-system", "a=b=c")).rejects.toMatchObject({ status: 400, reason: "BadRequest" });
  });

  it("expires a continue token older than the last compaction: 410 Expired, with a token for the rest as it is now", async () => {
    for (const n of ["a", "b", "c", "d"]) await cluster.client.createSecret("kube-system", { name: n, type: "Opaque", stringData: { k: n } });
    const list = (query: string) => rawRequest(cluster.running, "GET", `/api/v1/namespaces/kube-system/secrets?${query}`, { token: ADMIN_TOKEN });
    const first = await list("limit=2");
    const token = (first.body["metadata"] as { continue: string }).continue;
    // Compaction alone expires nothing; a write after the page and a compaction past it do.
    cluster.emulator.compact();
    expect((await list(`limit=2&continue=${token}`)).status).toBe(200);
    await cluster.client.createSecret("kube-system", { name: "e", type: "Opaque", stringData: { k: "e" } });
    cluster.emulator.compact();

    const expired = await list(`limit=2&continue=${token}`);
    expect(expired).toMatchObject({ status: 410, body: { kind: "Status", reason: "Expired", code: 410, message: expect.stringContaining("too old") } });
    const rest = await list(`continue=${(expired.body["metadata"] as { continue: string }).continue}`);
    expect((rest.body["items"] as { metadata: { name: string } }[]).map((i) => i.metadata.name)).toEqual(["c", "d", "e"]);
    expect((await list("limit=2&continue=bm90LWEtdG9rZW4")).body).toMatchObject({ code: 400, reason: "BadRequest" });
  });

  it("lists again whole when etcd compacts while it pages, as client-go's pager does", async () => {
    // The emulator answers each of the first two pages after its sleep: a write and a compaction happen there, so
    // the second page's token predates the compaction.
    let sleeps = 0;
    const emulator = new KubeEmulator({
      tokens: [ADMIN_TOKEN],
      sleep: async () => {
        sleeps += 1;
        await client.createSecret("kube-system", { name: `late-${sleeps}`, type: "Opaque", stringData: { k: "late" } });
        emulator.compact();
      },
    });
    const running = await emulator.start();
    const client = new KubeClient({ server: running.server, caPem: running.caPem, token: ADMIN_TOKEN }, { listPageSize: 2 });
    try {
      for (const n of ["a", "b", "c", "d", "e"]) await client.createSecret("kube-system", { name: n, type: "Opaque", stringData: { k: n } });
      emulator.faults.inject({ method: "GET", path: "/api/v1/namespaces/kube-system/secrets", latencyMs: 1, times: 2 });

      const listed = await client.listSecrets("kube-system", "");
      expect(listed.map((s) => s.name).sort()).toEqual(["a", "b", "c", "d", "e", "late-1", "late-2"]);
      const lists = emulator.requests.filter({ route: "secrets.list" });
      expect(lists.map((r) => [r.status, r.query["limit"] ?? "whole"])).toEqual([
        [200, "2"],
        [410, "2"],
        [200, "whole"],
      ]);
    } finally {
      client.close();
      await running.close();
    }
  });
});
