import { createDefaultHttpClient, createHttpHeaders, type HttpClient } from "@azure/core-rest-pipeline";
import { TableClient } from "@azure/data-tables";
import { describe, expect, inject, it } from "vitest";
import { GroupInsert } from "../../orchestrations/clients/registry/group-insert.js";
import { isWaiting } from "../../orchestrations/clients/registry/in-flight.js";
import { Registry } from "../../orchestrations/clients/registry/registry.js";
import { toRow } from "../../orchestrations/clients/registry/table-rows.js";
import { ContinuationToken } from "../../functions/http/views.js";
import { freshRegistry, newNodeInput as node, poolSpec, recordingRegistry, uniquePrefix } from "./fixtures.js";

describe("registry on Azurite", () => {
  it("creates, reads and updates a pool under its ETag", async () => {
    const { registry } = await freshRegistry();
    const created = await registry.pools.create("edge", poolSpec({ maxInFlight: 2 }), "alice");
    expect(created).toMatchObject({ name: "edge", maxInFlight: 2, inFlight: 0, clonePolicy: "reject" });
    await expect(registry.pools.create("edge", poolSpec(), "alice")).rejects.toMatchObject({ code: "PoolExists" });

    const updated = await registry.pools.update("edge", poolSpec({ maxInFlight: 5 }), "bob", created.etag);
    expect(updated.maxInFlight).toBe(5);
    // A writer holding the old ETag loses.
    await expect(registry.pools.update("edge", poolSpec({ maxInFlight: 9 }), "carol", created.etag)).rejects.toMatchObject({ code: "Conflict" });
    expect((await registry.pools.get("edge"))?.maxInFlight).toBe(5);
    expect((await registry.audit.list()).map((a) => a.action).sort()).toEqual(["pool.create", "pool.update"]);
  });

  it("group-commits one process's changes to a shared token: 32 concurrent uses in two writes; two processes still count exactly", async () => {
    const { registry, sent, prefix } = await recordingRegistry();
    const token = await registry.tokens.create(tokenInput("0123456789abcdef", 100), "alice");
    const use = (r: Registry) => r.tokens.mutate(token.tokenId, (t) => ({ uses: t.uses + 1 }), { known: token });
    sent.length = 0;
    await Promise.all(Array.from({ length: 32 }, () => use(registry)));
    // The first use went alone; the 31 that arrived while it was in flight went as one write, started from the row
    // the first left: no 412, no re-read.
    expect(sent.filter((r) => r.includes("RowKey='token:"))).toEqual([expect.stringMatching(/^PATCH /), expect.stringMatching(/^PATCH /)]);
    expect((await registry.tokens.get(token.tokenId))!.uses).toBe(32);
    // A second process on the same tables: the ETag still serialises the two, and no use is lost or doubled.
    const other = new Registry({ connectionString: inject("azuriteConnectionString"), prefix });
    await Promise.all(Array.from({ length: 16 }, (_, i) => use(i % 2 ? registry : other)));
    expect((await registry.tokens.get(token.tokenId))!.uses).toBe(48);
  });

  it("a group of token changes never passes maxUses: each change is applied to the row as the ones before it left it, a refused one fails alone", async () => {
    const { registry, sent } = await recordingRegistry();
    const token = await registry.tokens.create(tokenInput("fedcba9876543210", 10), "alice");
    const redeem = () =>
      registry.tokens.mutate(
        token.tokenId,
        (t) => {
          if (t.uses >= t.maxUses) throw new Error("exhausted");
          return { uses: t.uses + 1 };
        },
        { known: token },
      );
    sent.length = 0;
    const outcomes = await Promise.allSettled(Array.from({ length: 32 }, redeem));
    expect(outcomes.filter((o) => o.status === "fulfilled")).toHaveLength(10);
    expect(outcomes.filter((o) => o.status === "rejected").map((o) => (o as PromiseRejectedResult).reason.message)).toEqual(Array(22).fill("exhausted"));
    // The first use alone, then the 31 that waited: nine of them written, and the refusals stood on a row read from
    // the service, not on this process's guess of it (one read before the group's write).
    expect(sent.filter((r) => r.includes("RowKey='token:")).map((r) => r.split(" ")[0])).toEqual(["PATCH", "GET", "PATCH"]);
    expect((await registry.tokens.get(token.tokenId))!.uses).toBe(10);
  });

  it("reads, lists, counts, revokes and removes tokens made before tokens moved to the index, where they are; a single-use token's use can join a transaction, no other's", async () => {
    const { registry, prefix } = await freshRegistry();
    const legacyTable = TableClient.fromConnectionString(inject("azuriteConnectionString"), `${prefix}tokens`, { allowInsecureConnection: true });
    const indexTable = TableClient.fromConnectionString(inject("azuriteConnectionString"), `${prefix}index`, { allowInsecureConnection: true });
    const fresh = [
      await registry.tokens.create(tokenInput("00000000000000a1", 1), "alice"),
      await registry.tokens.create(tokenInput("00000000000000a2", 5), "alice"),
    ];
    // As the service stored them before: table `tokens`, PK "token", RK the id (one in another pool).
    for (const [id, pool] of [
      ["00000000000000b1", "edge"],
      ["00000000000000b2", "other"],
    ] as const) {
      await legacyTable.createEntity(toRow("token", id, { ...tokenInput(id, 1), pool, uses: 0, createdAt: new Date().toISOString() }));
    }
    // Another process (nothing remembered): one continuation token walks the index's tokens, then the older ones; every
    // token it hands out is one the admin API takes back.
    const other = new Registry({ connectionString: inject("azuriteConnectionString"), prefix });
    const seen: string[] = [];
    let continuationToken: string | undefined;
    for (let i = 0; i < 10; i++) {
      const page = await other.tokens.list({ maxPageSize: 1, continuationToken });
      seen.push(...page.items.map((t) => t.tokenId));
      continuationToken = page.continuationToken;
      if (!continuationToken) break;
      expect(ContinuationToken.safeParse(continuationToken).success, continuationToken).toBe(true);
    }
    expect(seen).toEqual(["00000000000000a1", "00000000000000a2", "00000000000000b1", "00000000000000b2"]);
    expect((await other.tokens.list({ pool: "edge" })).items.map((t) => t.tokenId)).toEqual(["00000000000000a1", "00000000000000a2", "00000000000000b1"]);

    const legacy = (await other.tokens.get("00000000000000b1"))!;
    expect(legacy).toMatchObject({ pool: "edge", uses: 0, maxUses: 1 });
    expect([other.tokens.useAction(legacy), other.tokens.useAction(fresh[1]!)]).toEqual([undefined, undefined]);
    expect(other.tokens.useAction(fresh[0]!)).toEqual([
      "update",
      { partitionKey: "node", rowKey: "token:00000000000000a1", uses: 1 },
      "Merge",
      { etag: fresh[0]!.etag },
    ]);
    // Changed in place, never copied into the index.
    await other.tokens.mutate(legacy.tokenId, (t) => ({ uses: t.uses + 1 }), { known: legacy });
    expect((await legacyTable.getEntity<{ uses: number }>("token", legacy.tokenId)).uses).toBe(1);
    await expect(indexTable.getEntity("node", `token:${legacy.tokenId}`)).rejects.toMatchObject({ statusCode: 404 });
    expect((await new Registry({ connectionString: inject("azuriteConnectionString"), prefix }).tokens.revoke(legacy.tokenId, "bob")).revokedAt).toBeDefined();
    await registry.tokens.remove(legacy.tokenId, "bob");
    expect(await registry.tokens.get(legacy.tokenId)).toBeUndefined();
    await expect(legacyTable.getEntity("token", legacy.tokenId)).rejects.toMatchObject({ statusCode: 404 });
    expect((await registry.tokens.list()).items.map((t) => t.tokenId)).toEqual(["00000000000000a1", "00000000000000a2", "00000000000000b2"]);
  });

  it("a token write that fails fails every change of its group, and the next change starts from the row as read", async () => {
    let patches = 0;
    const transport = createDefaultHttpClient();
    // The second write of the token (the group's) is refused by the service, as a 400 is: not retried by the SDK.
    const httpClient: HttpClient = {
      sendRequest: (request) =>
        request.method === "PATCH" && decodeURIComponent(request.url).includes("RowKey='token:") && ++patches === 2
          ? Promise.resolve({
              request,
              status: 400,
              headers: createHttpHeaders({ "content-type": "application/json" }),
              bodyAsText: JSON.stringify({ "odata.error": { code: "InvalidInput", message: { lang: "en-US", value: "refused by the test" } } }),
            })
          : transport.sendRequest(request),
    };
    const registry = new Registry({ connectionString: inject("azuriteConnectionString"), prefix: uniquePrefix(), httpClient });
    await registry.ensureTables();
    const token = await registry.tokens.create(tokenInput("0011223344556677", 100), "alice");
    const use = () => registry.tokens.mutate(token.tokenId, (t) => ({ uses: t.uses + 1 }), { known: token });
    const outcomes = await Promise.allSettled(Array.from({ length: 6 }, use));
    // The first alone (stored); the five that waited were one write, refused, and none of them is stored.
    expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", ...Array(5).fill("rejected")]);
    expect((outcomes[1] as PromiseRejectedResult).reason).toMatchObject({ statusCode: 400 });
    expect((await registry.tokens.get(token.tokenId))!.uses).toBe(1);
    // The queue forgot its copy: the next change reads the row (its own copy is stale by one use) and counts right.
    await use();
    expect((await registry.tokens.get(token.tokenId))!.uses).toBe(2);
  });

  it("overlapping reads of a pool's spec share one request; a write by this process forgets the read in flight", async () => {
    const sent: string[] = [];
    const transport = createDefaultHttpClient();
    let hold: Promise<void> | undefined;
    // Holds back the answer to the next pool read once `hold` is set: a read still in flight when the pool is written.
    const httpClient: HttpClient = {
      sendRequest: async (request) => {
        sent.push(`${request.method} ${decodeURIComponent(request.url)}`);
        const held = request.method === "GET" && request.url.includes("pools(") ? hold : undefined;
        if (held) hold = undefined;
        const response = await transport.sendRequest(request);
        await held;
        return response;
      },
    };
    const registry = new Registry({ connectionString: inject("azuriteConnectionString"), prefix: uniquePrefix(), httpClient });
    await registry.ensureTables();
    await registry.pools.create("edge", poolSpec({ maxInFlight: 2 }), "alice");
    sent.length = 0;
    const specs = await Promise.all(Array.from({ length: 10 }, () => registry.pools.spec("edge")));
    expect(specs.map((p) => p?.maxInFlight)).toEqual(Array(10).fill(2));
    expect(sent.filter((r) => r.includes("pools("))).toHaveLength(1);

    let release!: () => void;
    hold = new Promise((resolve) => (release = resolve));
    // Were the read joined by what comes after the update, the update's own answer would wait for it: let it go in time.
    const letGo = setTimeout(() => release(), 2_000);
    const inFlight = registry.pools.spec("edge");
    const updated = await registry.pools.update("edge", poolSpec({ maxInFlight: 7 }), "bob");
    // Asked after the update's write: reads of their own, not the one still in flight from before it.
    const after = await registry.pools.spec("edge");
    expect(hold).toBeUndefined();
    release();
    clearTimeout(letGo);
    expect([(await inFlight)?.maxInFlight, updated.maxInFlight, after?.maxInFlight]).toEqual([2, 7, 7]);
  });

  it("group-commits concurrent audit writes: every row stored, the writes that waited in one transaction, a lone write one insert", async () => {
    const { registry, sent } = await recordingRegistry();
    const write = (i: number) => registry.audit.write({ actor: "test", action: "node.touch", objectType: "node", objectId: `n${i}` });
    sent.length = 0;
    await Promise.all(Array.from({ length: 40 }, (_, i) => write(i)));
    // The first write went alone; the 39 that arrived while it was in flight went together.
    expect(sent.map((r) => r.split("?")[0]!.replace(/^POST .*\/(t[0-9a-f]+audit|\$batch)$/, "POST $1"))).toEqual([
      expect.stringMatching(/^POST t[0-9a-f]+audit$/),
      "POST $batch",
    ]);
    const stored = (await registry.audit.list()).filter((a) => a.action === "node.touch").map((a) => a.objectId);
    expect(stored.sort()).toEqual(Array.from({ length: 40 }, (_, i) => `n${i}`).sort());
    sent.length = 0;
    await write(40);
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatch(/^POST .*audit/);
  });

  it("fails every writer of a failed group insert, and the next insert to the partition starts afresh", async () => {
    const table = TableClient.fromConnectionString(inject("azuriteConnectionString"), `${uniquePrefix()}grouped`, { allowInsecureConnection: true });
    const inserts = new GroupInsert(table);
    const row = (i: number) => ({ partitionKey: "p", rowKey: `r${i}` });
    // No table yet: the lone insert and the transaction behind it both fail, and each writer hears of it.
    const results = await Promise.allSettled(Array.from({ length: 5 }, (_, i) => inserts.insert(row(i))));
    expect(results.map((r) => r.status)).toEqual(Array(5).fill("rejected"));
    await table.createTable();
    await Promise.all([inserts.insert(row(10)), inserts.insert(row(11)), inserts.insert(row(12))]);
    const keys: string[] = [];
    for await (const e of table.listEntities()) keys.push(e.rowKey!);
    expect(keys.sort()).toEqual(["r10", "r11", "r12"]);
  });

  it("keeps a group insert's transactions within 4 MiB: large rows that waited go in as many transactions as they need", async () => {
    const sent: string[] = [];
    const transport = createDefaultHttpClient();
    const table = TableClient.fromConnectionString(inject("azuriteConnectionString"), `${uniquePrefix()}large`, {
      allowInsecureConnection: true,
      httpClient: { sendRequest: (request) => (sent.push(request.url), transport.sendRequest(request)) },
    });
    await table.createTable();
    const inserts = new GroupInsert(table);
    // Five 30,000-character properties: ~150 KB on the wire, ~450 KB by the bound's reckoning (3 bytes per unit).
    const big = (i: number) => ({
      partitionKey: "p",
      rowKey: `r${i}`,
      ...Object.fromEntries(Array.from({ length: 5 }, (_, k) => [`c${k}`, "x".repeat(30_000)])),
    });
    sent.length = 0;
    await Promise.all(Array.from({ length: 10 }, (_, i) => inserts.insert(big(i))));
    // One alone, then the nine that waited: four fit under the 2 MiB bound, then four, then the last one alone.
    expect(sent.map((u) => (u.includes("$batch") ? "batch" : "insert"))).toEqual(["insert", "batch", "batch", "insert"]);
    let stored = 0;
    for await (const _ of table.listEntities()) stored++;
    expect(stored).toBe(10);
  });

  it("counts in-flight and waiting nodes in the same transaction that creates or moves them", async () => {
    // A clock that moves a second on every reading: nodes that wait arrive in a known order.
    let at = Date.parse("2025-01-01T00:00:00Z");
    const { registry, prefix } = await freshRegistry(() => new Date((at += 1000)));
    await registry.pools.create("edge", poolSpec({ maxInFlight: 2 }), "alice");
    const nodes = TableClient.fromConnectionString(inject("azuriteConnectionString"), `${prefix}nodes`, { allowInsecureConnection: true });
    // The counts, after checking them against the slot rows: each row is its node's, and the node row names it.
    const count = async () => {
      const pool = (await registry.pools.get("edge"))!;
      const rows: string[] = [];
      const filter = "PartitionKey eq 'edge' and RowKey ge 'slot:' and RowKey lt 'slot;'";
      for await (const e of nodes.listEntities<{ nodeId: string }>({ queryOptions: { filter } })) {
        expect((await registry.nodes.get(e.nodeId))!.slot).toBe(e.rowKey);
        rows.push(e.nodeId);
      }
      expect(new Set(rows).size).toBe(rows.length);
      expect(rows).toHaveLength(pool.inFlight + pool.waiting);
      return { inFlight: pool.inFlight, waiting: pool.waiting };
    };
    const slotOf = async (nodeId: string) => (await registry.nodes.get(nodeId))!.slot;
    const n1 = await registry.nodes.create(node("edge", "n1"), "test");
    const n2 = await registry.nodes.create(node("edge", "n2"), "test");
    expect([n1.slot, n2.slot].sort()).toEqual(["slot:0", "slot:1"]);
    // A full pool refuses nobody: the third node waits (a waiting row, not a slot).
    const n3 = await registry.nodes.create(node("edge", "n3"), "test");
    expect(n3.status).toBe("Enrolling");
    expect(isWaiting(n3.slot)).toBe(true);
    expect(n3.slot).toMatch(/^slot:~w:\d{15}:n3$/);
    expect(await slotOf("n3")).toBe(n3.slot);
    // Waiting for approval takes no slot and no waiting row.
    const n4 = await registry.nodes.create(node("edge", "n4", "AwaitingApproval"), "test");
    expect(n4.slot).toBeUndefined();
    expect(await count()).toEqual({ inFlight: 2, waiting: 1 });
    await expect(registry.nodes.create(node("edge", "n1"), "test")).rejects.toMatchObject({ code: "NodeExists" });
    expect(await count()).toEqual({ inFlight: 2, waiting: 1 });

    // n1 leaves in-flight: its slot goes to n3, which waited, in the same transaction.
    await registry.nodes.update((await registry.nodes.get("n1"))!, () => ({ status: "Ready" }), "saga", "node.ready");
    expect(await count()).toEqual({ inFlight: 2, waiting: 0 });
    expect(await slotOf("n1")).toBeUndefined();
    expect(await slotOf("n3")).toBe(n1.slot);
    // Approved into a full pool, n4 waits.
    await registry.nodes.update((await registry.nodes.get("n4"))!, () => ({ status: "Enrolling" }), "alice", "node.approve");
    expect(isWaiting(await slotOf("n4"))).toBe(true);
    expect(await count()).toEqual({ inFlight: 2, waiting: 1 });
    // Offboarding is never kept waiting (it frees resources): over the limit, it takes an overflow row.
    await registry.nodes.update((await registry.nodes.get("n1"))!, () => ({ status: "Offboarding" }), "x", "node.offboarding");
    expect(await slotOf("n1")).toBe("slot:~n1");
    expect(await count()).toEqual({ inFlight: 3, waiting: 1 });
    // A slot freed while the pool is over its limit goes to the offboarding node first, not to n4.
    await registry.nodes.update((await registry.nodes.get("n2"))!, () => ({ status: "Ready" }), "saga", "node.ready");
    expect(await slotOf("n1")).toBe(n2.slot);
    expect(isWaiting(await slotOf("n4"))).toBe(true);
    expect(await count()).toEqual({ inFlight: 2, waiting: 1 });
    // Re-enrolling into a full pool waits too, behind n4.
    await registry.nodes.update((await registry.nodes.get("n2"))!, () => ({ status: "Enrolling" }), "x", "node.reenrol");
    expect(isWaiting(await slotOf("n2"))).toBe(true);
    expect(await count()).toEqual({ inFlight: 2, waiting: 2 });
    await registry.nodes.update((await registry.nodes.get("n1"))!, () => ({ status: "Offboarded" }), "x", "node.offboarded");
    expect(await slotOf("n4")).toBe(n2.slot);
    expect(isWaiting(await slotOf("n2"))).toBe(true);
    expect(await count()).toEqual({ inFlight: 2, waiting: 1 });
    // A waiting node that fails gives up its place and frees nothing.
    await registry.nodes.update((await registry.nodes.get("n2"))!, () => ({ status: "Failed" }), "x", "node.failed");
    expect(await slotOf("n2")).toBeUndefined();
    expect(await count()).toEqual({ inFlight: 2, waiting: 0 });
  });

  it("keeps the counter exact when many writers move nodes at once", async () => {
    const { registry } = await freshRegistry();
    await registry.pools.create("edge", poolSpec({ maxInFlight: 1000 }), "alice");
    const ids = Array.from({ length: 12 }, (_, i) => `c${i}`);
    await Promise.all(ids.map((id) => registry.nodes.create(node("edge", id), "test")));
    expect((await registry.pools.get("edge"))?.inFlight).toBe(12);
    await Promise.all(
      ids.slice(0, 7).map(async (id) => registry.nodes.update((await registry.nodes.get(id))!, () => ({ status: "Ready" }), "saga", "node.ready")),
    );
    expect((await registry.pools.get("edge"))?.inFlight).toBe(5);
  });

  it("lets exactly one of two concurrent creates of the same node win, and counts it once", async () => {
    const { registry } = await freshRegistry();
    await registry.pools.create("edge", poolSpec({ maxInFlight: 10 }), "alice");
    const outcomes = await Promise.allSettled(Array.from({ length: 4 }, () => registry.nodes.create(node("edge", "twin"), "test")));
    expect(outcomes.filter((o) => o.status === "fulfilled")).toHaveLength(1);
    for (const o of outcomes.filter((o) => o.status === "rejected")) expect((o as PromiseRejectedResult).reason).toMatchObject({ code: "NodeExists" });
    expect((await registry.pools.get("edge"))?.inFlight).toBe(1);
  });

  it("pages nodes with a continuation token and filters by status", async () => {
    const { registry } = await freshRegistry();
    await registry.pools.create("edge", poolSpec(), "alice");
    for (let i = 0; i < 5; i++) await registry.nodes.create(node("edge", `p${i}`, i % 2 ? "AwaitingApproval" : "Enrolling"), "test");
    const first = await registry.nodes.list({ pool: "edge", maxPageSize: 2 });
    expect(first.items).toHaveLength(2);
    expect(first.continuationToken).toBeDefined();
    const rest = await registry.nodes.list({ pool: "edge", maxPageSize: 10, continuationToken: first.continuationToken });
    expect([...first.items, ...rest.items].map((n) => n.nodeId)).toEqual(["p0", "p1", "p2", "p3", "p4"]);
    expect((await registry.nodes.list({ status: "AwaitingApproval" })).items.map((n) => n.nodeId)).toEqual(["p1", "p3"]);
  });

  it("keeps result claims in their own table: insert-only, released on failure, purged by age alone", async () => {
    const DAY = 24 * 3_600_000;
    let clock = new Date("2025-01-01T00:00:00Z");
    const { registry, prefix } = await freshRegistry(() => clock);
    const rows = async (table: string) => {
      const client = TableClient.fromConnectionString(inject("azuriteConnectionString"), `${prefix}${table}`, { allowInsecureConnection: true });
      const keys: string[] = [];
      for await (const e of client.listEntities()) keys.push(`${e.partitionKey}/${e.rowKey}`);
      return keys;
    };

    expect(await registry.claims.claimOnce("result:n1", "n1@r1:old:1")).toBe(true);
    expect(await registry.claims.claimOnce("result:n1", "n1@r1:old:1")).toBe(false);
    expect(await registry.nonces.claim({ keyId: "k1", nonce: "once", expiresAt: new Date(clock.getTime() + 5 * 60_000) })).toBe(true);
    expect(await rows("claims")).toEqual(["result:n1/n1@r1:old:1"]);
    expect(await rows("nonces")).toEqual(["k1/once"]);

    // A released claim can be made again (the redelivery does the work); releasing what is not there is no error.
    await registry.claims.release("result:n1", "n1@r1:old:1");
    expect(await registry.claims.claimOnce("result:n1", "n1@r1:old:1")).toBe(true);
    await registry.claims.release("result:n1", "never-claimed");

    clock = new Date(clock.getTime() + 8 * DAY);
    expect(await registry.claims.claimOnce("result:n1", "n1@r1:new:1")).toBe(true);
    // Only claims made before the cut-off go, and only claims: the (expired) nonce is the nonce table's business.
    expect(await registry.claims.purge(new Date(clock.getTime() - 7 * DAY))).toBe(1);
    expect(await rows("claims")).toEqual(["result:n1/n1@r1:new:1"]);
    expect(await rows("nonces")).toEqual(["k1/once"]);
    expect(await registry.claims.claimOnce("result:n1", "n1@r1:new:1")).toBe(false);
    expect(await registry.claims.claimOnce("result:n1", "n1@r1:old:1")).toBe(true);

    // The sweeper's purge covers both tables: here the expired nonce (the old claim was made again just now).
    expect(await registry.purgeExpired(new Date(clock.getTime() - 7 * DAY))).toBe(1);
    expect(await rows("nonces")).toEqual([]);
    expect(await rows("claims")).toEqual(["result:n1/n1@r1:new:1", "result:n1/n1@r1:old:1"]);
  });

  it("counts rejected results against a per-subject quota per window, and stops writing once it is spent", async () => {
    let clock = new Date("2026-12-05T10:00:00Z");
    const { registry } = await freshRegistry(() => clock);
    const takes = [];
    for (let i = 0; i < 13; i++) takes.push(await registry.rejections.take("fn-a", 10, 3_600_000));
    expect(takes.map((t) => t.allowed)).toEqual([...Array(10).fill(true), false, false, false]);
    expect(takes.map((t) => t.firstRefused)).toEqual([...Array(10).fill(false), true, false, false]);
    // Another subject has its own quota; the next window starts afresh.
    expect((await registry.rejections.take("unknown", 10, 3_600_000)).allowed).toBe(true);
    clock = new Date("2026-12-05T11:00:00Z");
    expect((await registry.rejections.take("fn-a", 10, 3_600_000)).allowed).toBe(true);
    // Under a concurrent flood, never more than the quota.
    const flood = await Promise.all(Array.from({ length: 30 }, () => registry.rejections.take("fn-b", 10, 3_600_000)));
    expect(flood.filter((t) => t.allowed).length).toBeLessThanOrEqual(10);
    expect(flood.filter((t) => t.allowed).length).toBeGreaterThan(0);
  });
});

function tokenInput(tokenId: string, maxUses: number) {
  return {
    tokenId,
    pool: "edge",
    secretHash: "x".repeat(64),
    expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
    maxUses,
    labels: {},
    taints: [],
    approvalRequired: false,
    createdBy: "test",
  };
}
