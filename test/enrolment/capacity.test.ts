/**
 * Pool capacity and the storage cost of enrolment (issue 16): the pool's in-flight limit holds under concurrent
 * enrolments and nobody is refused for it (a node past the limit waits for a slot), a slot freed by a node that leaves
 * in-flight goes to the node that waited longest, and an enrolment (first time, retried, and into a full pool) costs a
 * bounded number of registry requests, counted on the wire to Azurite.
 */
import { TableClient } from "@azure/data-tables";
import { afterEach, beforeEach, describe, expect, inject, it } from "vitest";
import { HttpCensus } from "../../bench/support/http-census.js";
import { isWaiting } from "../../orchestrations/clients/registry/in-flight.js";
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
/** A snapshot row as its table and the kind of its row key (the ids in it left out). */
const rowKind = (row: string) => {
  const table = row.slice(0, row.indexOf(":"));
  const { rowKey } = JSON.parse(row.slice(table.length + 1)) as { rowKey: string };
  if (table === "tokens") return "tokens:token";
  if (table === "audit") return "audit:entry";
  if (/^fn-[0-9a-f]{24}$/.test(rowKey)) return `${table}:node id`;
  if (/^slot:\d+$/.test(rowKey)) return `${table}:slot`;
  if (isWaiting(rowKey)) return `${table}:waiting`;
  return `${table}:${rowKey.startsWith("fp:") ? rowKey.split(":", 2).join(":") : rowKey.split(":", 1)[0]}`;
};
/** The pool's slot rows (slots below the limit, overflow and waiting rows), as stored. */
const slotRows = async () => {
  const nodes = TableClient.fromConnectionString(inject("azuriteConnectionString"), `${app.prefix}nodes`, { allowInsecureConnection: true });
  const rows: { rowKey: string; nodeId: string }[] = [];
  const filter = "PartitionKey eq 'edge' and RowKey ge 'slot:' and RowKey lt 'slot;'";
  for await (const e of nodes.listEntities<{ nodeId: string }>({ queryOptions: { filter } })) rows.push({ rowKey: e.rowKey!, nodeId: e.nodeId });
  return rows;
};
const tableHost = () => new URL(/TableEndpoint=([^;]+)/.exec(inject("azuriteConnectionString"))![1]!).host;

describe("pool capacity", () => {
  it("answers all of 64 concurrent enrolments 201: exactly maxInFlight hold slots, the rest wait, every token use spent", async () => {
    expect((await app.createPool("edge", { maxInFlight: 5 })).status).toBe(201);
    const enrolments = await Promise.all(
      Array.from({ length: 64 }, async () => {
        const token = await app.createToken("edge");
        return { token, node: newNode() };
      }),
    );
    const answers = await Promise.all(enrolments.map(({ node, token }) => app.enrol(node, token)));
    expect(answers.map((a) => a.status)).toEqual(Array(64).fill(201));
    const answered = answers.map((a) => (a.json as { nodeId: string }).nodeId);
    expect(new Set(answered).size).toBe(64);
    for (const a of answers) expect(a.json).toMatchObject({ status: "Enrolling" });
    const pool = (await registry().pools.get("edge"))!;
    expect({ inFlight: pool.inFlight, waiting: pool.waiting }).toEqual({ inFlight: 5, waiting: 59 });
    const enrolling = (await registry().nodes.list({ pool: "edge", maxPageSize: 100 })).items;
    expect(enrolling.map((n) => n.nodeId).sort()).toEqual([...answered].sort());
    expect(enrolling.filter((n) => n.status !== "Enrolling")).toEqual([]);
    // Five hold the five slots, one each; the other 59 each have one waiting row of their own.
    const holders = enrolling.filter((n) => !isWaiting(n.slot));
    expect(holders.map((n) => n.slot).sort()).toEqual(["slot:0", "slot:1", "slot:2", "slot:3", "slot:4"]);
    for (const n of enrolling.filter((n) => isWaiting(n.slot))) expect(n.slot).toMatch(new RegExp(`^slot:~w:\\d{15}:${n.nodeId}$`));
    const rows = await slotRows();
    expect(rows).toHaveLength(64);
    expect(Object.fromEntries(rows.map((r) => [r.nodeId, r.rowKey]))).toEqual(Object.fromEntries(enrolling.map((n) => [n.nodeId, n.slot])));
    // Every node's saga was started, told to wait for its slot; every token use is spent (none given back).
    expect(app.simulator.instanceIds().sort()).toEqual([...answered].sort());
    for (const id of answered) expect(app.simulator.getStatus(id)!.input).toMatchObject({ nodeId: id, pool: "edge", waitsForSlot: true });
    const uses = await Promise.all(enrolments.map(({ token }) => registry().tokens.get(token.split(".")[1]!)));
    expect(uses.map((t) => t!.uses)).toEqual(Array(64).fill(1));
  });

  it("hands a slot on when a node leaves in-flight: Ready, Failed and Offboarded each free theirs for the longest-waiting node, or leave it free", async () => {
    expect((await app.createPool("edge", { maxInFlight: 2 })).status).toBe(201);
    const enrol = async () => {
      const res = await app.enrol(newNode(), await app.createToken("edge"));
      expect(res.status).toBe(201);
      return (res.json as { nodeId: string }).nodeId;
    };
    const slotOf = async (nodeId: string) => (await registry().nodes.get(nodeId))!.slot;
    const counts = async () => {
      const pool = (await registry().pools.get("edge"))!;
      // The slot rows agree: one per node, named by the node's row.
      const rows = await slotRows();
      for (const r of rows) expect(await slotOf(r.nodeId)).toBe(r.rowKey);
      expect(rows).toHaveLength(pool.inFlight + pool.waiting);
      return { inFlight: pool.inFlight, waiting: pool.waiting };
    };
    const move = async (nodeId: string, status: "Ready" | "Failed" | "Offboarding" | "Offboarded") => {
      await registry().nodes.update((await registry().nodes.get(nodeId))!, () => ({ status }), "test", `node.${status.toLowerCase()}`);
    };
    const [a, b] = [await enrol(), await enrol()];
    const [slotA, slotB] = [await slotOf(a), await slotOf(b)];
    expect([slotA, slotB].sort()).toEqual(["slot:0", "slot:1"]);
    const c = await enrol();
    expect(isWaiting(await slotOf(c))).toBe(true);
    expect(await counts()).toEqual({ inFlight: 2, waiting: 1 });

    // Ready frees a's slot: c, which waited, has it.
    await move(a, "Ready");
    expect(await slotOf(c)).toBe(slotA);
    expect(await counts()).toEqual({ inFlight: 2, waiting: 0 });
    const d = await enrol();
    const e = await enrol();
    expect(await counts()).toEqual({ inFlight: 2, waiting: 2 });

    // Failed frees b's slot: d, the longer waiting, has it; e still waits.
    await move(b, "Failed");
    expect(await slotOf(d)).toBe(slotB);
    expect(isWaiting(await slotOf(e))).toBe(true);
    expect(await counts()).toEqual({ inFlight: 2, waiting: 1 });

    // Offboarding holds a slot (over the limit, never kept waiting), and is first in line for the next one freed.
    await move(a, "Offboarding");
    expect(await counts()).toEqual({ inFlight: 3, waiting: 1 });
    await move(c, "Ready");
    expect(await slotOf(a)).toBe(slotA);
    expect(isWaiting(await slotOf(e))).toBe(true);
    expect(await counts()).toEqual({ inFlight: 2, waiting: 1 });
    // Offboarded frees it: e has it.
    await move(a, "Offboarded");
    expect(await slotOf(e)).toBe(slotA);
    expect(await counts()).toEqual({ inFlight: 2, waiting: 0 });
    // With no one waiting, a freed slot stays free. The app saw the pool full a moment ago (and d's slot was freed by
    // another process, this test's registry), so the next enrolment goes straight to wait (unless 10 s have passed);
    // its saga's first look takes the free slot.
    await move(d, "Ready");
    expect(await counts()).toEqual({ inFlight: 1, waiting: 0 });
    const f = await enrol();
    expect(await registry().nodes.takeSlot({ pool: "edge", nodeId: f }, { waited: false, at: new Date().toISOString() })).toBe(true);
    expect(await slotOf(f)).toBe(slotB);
    expect(await counts()).toEqual({ inFlight: 2, waiting: 0 });
  });
});

describe("registry requests per enrolment", () => {
  it("costs 5 requests for a first-time enrolment with its own token (the token's use goes with the key's binding) and 3 for its retry", async () => {
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
      expect({ firstTime, retry }).toEqual({ firstTime: 5, retry: 3 });
      expect((await registry().tokens.get(token.split(".")[1]!))!.uses).toBe(1);
    } finally {
      census.close();
    }
  });

  it("costs a first-time enrolment into a full pool what one into a free pool costs when the process saw it full, two more when not; a node already in answers 200", async () => {
    expect((await app.createPool("edge", { maxInFlight: 2 })).status).toBe(201);
    const shared = await app.createToken("edge", { maxUses: 10 });
    const inside = newNode();
    expect((await app.enrol(inside, shared)).status).toBe(201);
    /** One first-time enrolment: its answer, the registry requests it sent, and the rows it wrote (by kind). */
    const measure = async () => {
      const before = (await app.snapshot()).split("\n");
      const census = new HttpCensus();
      try {
        const start = census.count(tableHost());
        const res = await app.enrol(newNode(), shared);
        const requests = census.count(tableHost()) - start;
        const after = (await app.snapshot()).split("\n");
        const written = after
          .filter((row) => !before.includes(row))
          .map(rowKind)
          .sort();
        const removed = before
          .filter((row) => !after.includes(row))
          .map(rowKind)
          .sort();
        return { res, requests, written, removed };
      } finally {
        census.close();
      }
    };
    // The second slot is free: this one takes it.
    const free = await measure();
    expect(free.res.status).toBe(201);
    // The pool is full now: this one waits, answered as any first-time enrolment.
    const full = await measure();
    expect(full.res.status).toBe(201);
    const { nodeId } = full.res.json as { nodeId: string };
    expect(full.res.json).toMatchObject({ nodeId, status: "Enrolling" });
    // The same rows as a node that took a slot, its waiting row in place of the slot row; its token use spent.
    const rows = (slot: string) =>
      ["audit:entry", "index:key", "index:node id", "index:nonce", "index:token", "nodes:fp:machine-id", "nodes:fp:smbios-uuid", "nodes:node", slot].sort();
    expect([free.written, free.removed]).toEqual([rows("nodes:slot"), ["index:token"]]);
    expect([full.written, full.removed]).toEqual([rows("nodes:waiting"), ["index:token"]]);
    expect((await registry().nodes.get(nodeId))!.slot).toMatch(new RegExp(`^slot:~w:\\d{15}:${nodeId}$`));
    // Six requests into a free pool (a shared token's use is a request of its own); into a full one the same six, since
    // this process took both slots and knows the pool full: the node goes straight to its waiting row. Never a
    // refusal, and nothing printed or retried.
    expect({ free: free.requests, full: full.requests }).toEqual({ free: 6, full: 6 });
    expect((await registry().tokens.get(shared.split(".")[1]!))!.uses).toBe(3);
    const pool = (await registry().pools.get("edge"))!;
    expect({ inFlight: pool.inFlight, waiting: pool.waiting }).toEqual({ inFlight: 2, waiting: 1 });
    // The node that is in retries with the same token: answered as before, and nothing more spent.
    expect((await app.enrol(inside, shared)).status).toBe(200);
    expect((await registry().tokens.get(shared.split(".")[1]!))!.uses).toBe(3);
    // A process that does not know the pool full (a fresh one: another instance took the slots) probes a slot (409)
    // and lists the slots first: two requests more, once; then it knows.
    app.useServices({});
    expect((await app.enrol(inside, shared)).status).toBe(200); // the fresh services' first requests (tables) out of the way
    const unknown = await measure();
    expect([unknown.res.status, unknown.requests, unknown.written]).toEqual([201, 8, rows("nodes:waiting")]);
    const known = await measure();
    expect([known.res.status, known.requests]).toEqual([201, 6]);
    expect((await registry().tokens.get(shared.split(".")[1]!))!.uses).toBe(5);
  });
});
