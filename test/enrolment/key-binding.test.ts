/**
 * A public key belongs to one node. Before the fix, enrolling another machine (even in another pool) with a node's key
 * re-pointed the global key index: the victim's correctly signed requests then resolved to the newcomer's node (its
 * credentials call returned the newcomer's queue). A golden image with the agent key baked in does exactly this.
 * Moving a key is an admin's explicit, audited re-key.
 */
import { generateKeyPairSync } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { inject } from "vitest";
import { exportPublicKey } from "../../contract/keys.js";
import { signNodeRequest } from "../../contract/node-request.js";
import { Registry } from "../../orchestrations/clients/registry/registry.js";
import { admin, newNode, reader, startApp, type TestApp, type TestNode, useStandInSaga } from "../function-app/index.js";

useStandInSaga();

let app: TestApp;
beforeEach(async () => {
  app = await startApp();
  expect((await app.createPool("edge")).status).toBe(201);
  expect((await app.createPool("core")).status).toBe(201);
});
afterEach(async () => {
  await app.close();
});

const registry = () => new Registry({ connectionString: inject("azuriteConnectionString"), prefix: app.prefix });
const problemType = (res: { json: unknown }) => (res.json as { type: string }).type.replace("https://flexnode.dev/problems/", "");
const tokenUses = async (token: string) => (await registry().tokens.get(token.split(".")[1]!))!.uses;

async function signedCall(key: TestNode["privateKey"], method: string, path: string) {
  return app.call(method, path, { headers: await signNodeRequest({ method, url: path, body: "" }, { privateKey: key, now: new Date() }) });
}

/** Another machine (its own machine-id and SMBIOS UUID) that carries `victim`'s key pair. */
const sameKeyOtherMachine = (victim: TestNode): TestNode => ({ ...newNode(), privateKey: victim.privateKey, publicKey: victim.publicKey });

describe("a public key belongs to one node", () => {
  it("refuses another machine enrolling with a bound key, in the same pool or another, and the victim keeps its mailbox", async () => {
    const victim = newNode();
    const { nodeId } = (await app.enrol(victim, await app.createToken("edge"))).json as { nodeId: string };
    for (const pool of ["core", "edge"]) {
      const token = await app.createToken(pool);
      const res = await app.enrol(sameKeyOtherMachine(victim), token);
      expect([res.status, problemType(res)]).toEqual([409, "key-in-use"]);
      expect(res.json).not.toHaveProperty("mailbox");
      // The use is given back, and no node was made.
      expect(await tokenUses(token)).toBe(0);
      expect((await registry().nodes.list({ pool })).items.map((n) => n.nodeId)).toEqual(pool === "edge" ? [nodeId] : []);
    }
    const credentials = await signedCall(victim.privateKey, "POST", "/api/node/mailbox-credentials");
    expect([credentials.status, (credentials.json as { queue: string }).queue]).toEqual([200, `node-${nodeId}`]);
    expect((await registry().nodes.getByKey((await registry().nodes.get(nodeId))!.keyId))?.nodeId).toBe(nodeId);
  });

  it("lets exactly one of two machines enrolling at once with the same key have it", async () => {
    const key = newNode();
    const racers = [sameKeyOtherMachine(key), sameKeyOtherMachine(key), sameKeyOtherMachine(key)];
    const answers = await Promise.all(racers.map(async (m) => app.enrol(m, await app.createToken("edge"))));
    expect(answers.map((a) => a.status).sort()).toEqual([201, 409, 409]);
    const winner = (answers.find((a) => a.status === 201)!.json as { nodeId: string }).nodeId;
    expect((await registry().nodes.getByKey((await registry().nodes.get(winner))!.keyId))?.nodeId).toBe(winner);
    expect((await registry().nodes.list()).items).toHaveLength(1);
  });

  it("still answers the key's own node on a retry; a node that waits for a slot keeps its key, and gets the slot later", async () => {
    expect((await app.createPool("tiny", { maxInFlight: 1 })).status).toBe(201);
    const first = newNode();
    const firstToken = await app.createToken("tiny");
    const { nodeId: firstId } = (await app.enrol(first, firstToken)).json as { nodeId: string };
    expect((await app.enrol(first, firstToken)).status).toBe(200);
    const waiting = newNode();
    const token = await app.createToken("tiny");
    const enrolled = await app.enrol(waiting, token);
    expect(enrolled.status).toBe(201);
    const { nodeId } = enrolled.json as { nodeId: string };
    expect((await registry().nodes.get(nodeId))!.slot).toMatch(/^slot:~w:/);
    // Not refused, so the key is bound to the waiting node: the same key elsewhere is another machine's, refused.
    expect((await registry().nodes.getByKey((await registry().nodes.get(nodeId))!.keyId))?.nodeId).toBe(nodeId);
    const elsewhere = await app.createToken("core");
    const res = await app.enrol(waiting, elsewhere);
    expect([res.status, problemType(res)]).toEqual([409, "key-in-use"]);
    expect(await tokenUses(elsewhere)).toBe(0);
    expect((await registry().nodes.list({ pool: "core" })).items).toEqual([]);
    // Its retry answers its node, with its use spent once.
    const retry = await app.enrol(waiting, token);
    expect([retry.status, (retry.json as { nodeId: string }).nodeId]).toEqual([200, nodeId]);
    expect(await tokenUses(token)).toBe(1);
    // The first node leaves in-flight: the waiting node has its slot, and its retries still answer it.
    const firstSlot = (await registry().nodes.get(firstId))!.slot;
    expect(firstSlot).toBe("slot:0");
    await registry().nodes.update({ pool: "tiny", nodeId: firstId }, () => ({ status: "Ready" }), "test", "node.ready");
    expect((await registry().nodes.get(nodeId))!.slot).toBe(firstSlot);
    expect((await app.enrol(waiting, token)).status).toBe(200);
    expect(await tokenUses(token)).toBe(1);
  });
});

describe("re-keying is an explicit admin action", () => {
  it("binds a new key to a node, audited; the old key stops acting for it; a key of another live node is refused", async () => {
    const node = newNode();
    const { nodeId, keyId: oldKeyId } = (await app.enrol(node, await app.createToken("edge"))).json as { nodeId: string; keyId: string };
    const fresh = generateKeyPairSync("ed25519");
    const body = { publicKey: exportPublicKey(fresh.publicKey) };

    expect((await app.call("POST", `/api/manage/nodes/${nodeId}/rekey`, { headers: reader, body })).status).toBe(403);
    const res = await app.call("POST", `/api/manage/nodes/${nodeId}/rekey`, { headers: admin, body });
    expect(res.status).toBe(200);
    const newKeyId = (res.json as { keyId: string }).keyId;
    expect(newKeyId).not.toBe(oldKeyId);
    expect(problemType(await signedCall(node.privateKey, "GET", "/api/node/status"))).toBe("signature-unknown-key");
    expect((await signedCall(fresh.privateKey, "GET", "/api/node/status")).json).toMatchObject({ nodeId });
    const entry = (await registry().audit.list({ objectId: nodeId })).find((a) => a.action === "node.rekey-admin");
    expect(entry).toMatchObject({ actor: "alice@contoso.example", details: { keyFrom: oldKeyId, keyTo: newKeyId } });
    // The old key is free again: the machine it was on may enrol as itself.
    expect((await app.enrol(sameKeyOtherMachine(node), await app.createToken("core"))).status).toBe(201);

    const other = newNode();
    const { nodeId: otherId } = (await app.enrol(other, await app.createToken("edge"))).json as { nodeId: string };
    const before = await registry().nodes.get(otherId);
    const taken = await app.call("POST", `/api/manage/nodes/${otherId}/rekey`, { headers: admin, body });
    expect([taken.status, problemType(taken)]).toEqual([409, "key-in-use"]);
    expect((await registry().nodes.get(otherId))!.etag).toBe(before!.etag);
  });

  it("may take a key from a retired node, which then cannot come back with it", async () => {
    const node = newNode();
    const token = await app.createToken("edge", { maxUses: 3 });
    const { nodeId: oldId } = (await app.enrol(node, token)).json as { nodeId: string };
    // Its (stand-in) saga ends, as a retired node's has.
    await app.simulator.runUntilIdle();
    app.simulator.raiseEvent(oldId, "test-finish", "offboarded");
    await app.simulator.runUntilIdle();
    await registry().nodes.update({ pool: "edge", nodeId: oldId }, () => ({ status: "Offboarded" }), "test", "test.offboard");
    // Enrolment never moves a key, even from an offboarded node.
    const moved = sameKeyOtherMachine(node);
    expect(problemType(await app.enrol(moved, await app.createToken("core")))).toBe("key-in-use");

    const { nodeId: newId } = (await app.enrol(newNode(), await app.createToken("core"))).json as { nodeId: string };
    const res = await app.call("POST", `/api/manage/nodes/${newId}/rekey`, { headers: admin, body: { publicKey: node.publicKey } });
    expect(res.status).toBe(200);
    expect((await signedCall(node.privateKey, "GET", "/api/node/status")).json).toMatchObject({ nodeId: newId });
    // The offboarded node enrolling again with that key would take it back: refused.
    const back = await app.enrol(node, token);
    expect([back.status, problemType(back)]).toEqual([409, "key-in-use"]);
  });

  it("refuses a malformed key and an unknown node", async () => {
    const { nodeId } = (await app.enrol(newNode(), await app.createToken("edge"))).json as { nodeId: string };
    expect((await app.call("POST", `/api/manage/nodes/${nodeId}/rekey`, { headers: admin, body: { publicKey: "nope" } })).status).toBe(422);
    const unknown = await app.call("POST", `/api/manage/nodes/fn-${"0".repeat(24)}/rekey`, { headers: admin, body: { publicKey: newNode().publicKey } });
    expect([unknown.status, problemType(unknown)]).toEqual([404, "not-found"]);
  });
});
