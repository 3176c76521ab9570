import { generateKeyPairSync } from "node:crypto";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { Registry } from "../../orchestrations/clients/registry/registry.js";
import { signNodeRequest } from "../../contract/node-request.js";
import { newNode, startApp, type TestApp, type TestNode, useStandInSaga } from "../function-app/index.js";

useStandInSaga();

let app: TestApp;
let node: TestNode;
let nodeId: string;

beforeAll(async () => {
  app = await startApp();
  await app.createPool("edge");
  node = newNode();
  nodeId = ((await app.enrol(node, await app.createToken("edge"))).json as { nodeId: string }).nodeId;
});
afterAll(async () => {
  await app.close();
});

const problemType = (res: { json: unknown }) => (res.json as { type: string }).type.replace("https://flexnode.dev/problems/", "");

async function signed(method: string, path: string, options: { body?: unknown; key?: TestNode["privateKey"]; at?: Date; tamper?: (b: string) => string } = {}) {
  const body = options.body === undefined ? "" : JSON.stringify(options.body);
  const headers: Record<string, string> = {
    ...(await signNodeRequest({ method, url: path, body }, { privateKey: options.key ?? node.privateKey, now: options.at ?? new Date() })),
    ...(options.body === undefined ? {} : { "content-type": "application/json" }),
  };
  return { headers, body: options.tamper ? options.tamper(body) : body };
}

const send = (method: string, path: string, req: { headers: Record<string, string>; body: string }) =>
  app.call(method, path, { headers: req.headers, rawBody: req.body || undefined });

describe("node API request signatures (RFC 9421, Ed25519)", () => {
  it("accepts a request signed by the node's registered key", async () => {
    const res = await send("GET", "/api/node/status", await signed("GET", "/api/node/status"));
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ nodeId, pool: "edge", status: "Enrolling" });
  });

  it("accepts a signed body and refuses it once tampered", async () => {
    const facts = { ...node.facts, addresses: ["192.0.2.99"] };
    const ok = await send("PUT", "/api/node/facts", await signed("PUT", "/api/node/facts", { body: facts }));
    expect(ok.status).toBe(200);
    const before = await app.snapshot();
    const tampered = await signed("PUT", "/api/node/facts", { body: facts, tamper: (b) => b.replace("192.0.2.99", "192.0.2.66") });
    const res = await send("PUT", "/api/node/facts", tampered);
    expect([res.status, problemType(res)]).toEqual([401, "signature-digest-mismatch"]);
    expect(await app.snapshot()).toBe(before);
  });

  it("refuses a request signed with another key, or by a key nobody registered", async () => {
    const stranger = generateKeyPairSync("ed25519").privateKey;
    const res = await send("GET", "/api/node/status", await signed("GET", "/api/node/status", { key: stranger }));
    expect([res.status, problemType(res)]).toEqual([401, "signature-unknown-key"]);
    // A signature made by another key but claiming this node's key id.
    const real = await signed("GET", "/api/node/status");
    const forged = await signed("GET", "/api/node/status", { key: stranger });
    const keyId = /keyid="([^"]+)"/.exec(real.headers["signature-input"]!)![1]!;
    forged.headers["signature-input"] = forged.headers["signature-input"]!.replace(/keyid="[^"]+"/, `keyid="${keyId}"`);
    const wrongKey = await send("GET", "/api/node/status", forged);
    expect([wrongKey.status, problemType(wrongKey)]).toEqual([401, "signature-invalid"]);
  });

  it("refuses a stale timestamp and one from the future", async () => {
    const stale = await send("GET", "/api/node/status", await signed("GET", "/api/node/status", { at: new Date(Date.now() - 10 * 60_000) }));
    expect([stale.status, problemType(stale)]).toEqual([401, "signature-stale"]);
    const future = await send("GET", "/api/node/status", await signed("GET", "/api/node/status", { at: new Date(Date.now() + 10 * 60_000) }));
    expect([future.status, problemType(future)]).toEqual([401, "signature-future"]);
  });

  it("refuses a replay: a captured request sent again, fresh or after its timestamp went stale", async () => {
    const captured = await signed("GET", "/api/node/status");
    expect((await send("GET", "/api/node/status", captured)).status).toBe(200);
    const replay = await send("GET", "/api/node/status", captured);
    expect([replay.status, problemType(replay)]).toEqual([401, "signature-replayed"]);
    const old = await signed("GET", "/api/node/status", { at: new Date(Date.now() - 3 * 60_000) });
    expect(problemType(await send("GET", "/api/node/status", old))).toBe("signature-stale");
  });

  it("refuses unsigned requests and a signature moved to another path", async () => {
    const unsigned = await app.call("GET", "/api/node/status");
    expect([unsigned.status, problemType(unsigned)]).toEqual([401, "signature-missing"]);
    expect(unsigned.headers["www-authenticate"]).toContain("Signature");
    const forStatus = await signed("PUT", "/api/node/status", { body: node.facts });
    const moved = await send("PUT", "/api/node/facts", forStatus);
    expect([moved.status, problemType(moved)]).toEqual([401, "signature-invalid"]);
  });

  it("hands out fresh mailbox tokens on a signed request, and none to a node waiting for approval", async () => {
    const res = await send("POST", "/api/node/mailbox-credentials", await signed("POST", "/api/node/mailbox-credentials"));
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ queue: `node-${nodeId}`, resultsQueue: "node-results" });
    expect((await app.call("POST", "/api/node/mailbox-credentials")).status).toBe(401);

    const waiting = newNode();
    expect((await app.enrol(waiting, await app.createToken("edge", { approvalRequired: true }))).status).toBe(202);
    const body = "";
    const headers = await signNodeRequest({ method: "POST", url: "/api/node/mailbox-credentials", body }, { privateKey: waiting.privateKey, now: new Date() });
    const refused = await app.call("POST", "/api/node/mailbox-credentials", { headers });
    expect([refused.status, problemType(refused)]).toEqual([409, "no-mailbox"]);
  });

  it("keeps handing out mailbox tokens to a node its compensation took (Failed) until the mailbox is removed: the reset goes through it", async () => {
    const other = newNode();
    const { nodeId: otherId } = (await app.enrol(other, await app.createToken("edge"))).json as { nodeId: string };
    const registry = new Registry({ connectionString: inject("azuriteConnectionString"), prefix: app.prefix });
    const credentials = async () => {
      const headers = await signNodeRequest(
        { method: "POST", url: "/api/node/mailbox-credentials", body: "" },
        { privateKey: other.privateKey, now: new Date() },
      );
      return app.call("POST", "/api/node/mailbox-credentials", { headers });
    };
    const failed = { code: "Cancelled", message: "cancelled by an administrator", at: new Date().toISOString() };
    await registry.nodes.update(
      { pool: "edge", nodeId: otherId },
      () => ({ status: "Failed", lastError: failed, createdObjects: [`mailbox:node-${otherId}`] }),
      "test",
      "node.compensating",
    );
    const given = await credentials();
    expect([given.status, given.body]).toEqual([200, expect.any(String)]);
    await registry.nodes.update({ pool: "edge", nodeId: otherId }, () => ({ createdObjects: [] }), "test", "node.failed");
    expect([(await credentials()).status, problemType(await credentials())]).toEqual([409, "node-retired"]);
  });

  it("refuses facts that describe a different machine", async () => {
    const other = { ...node.facts, machineId: "f".repeat(32) };
    const res = await send("PUT", "/api/node/facts", await signed("PUT", "/api/node/facts", { body: other }));
    expect([res.status, problemType(res)]).toEqual([409, "identity-mismatch"]);
  });
});
