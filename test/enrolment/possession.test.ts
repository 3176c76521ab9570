/**
 * Enrolment proves possession of the node key: what an attacker holding only a node's public facts and public key
 * (and any token of the pool) can get. Each case here answered 200 with fresh mailbox SAS before the fix.
 */
import { generateKeyPairSync } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { inject } from "vitest";
import { Registry } from "../../orchestrations/clients/registry/registry.js";
import { enrol } from "../../orchestrations/use-cases/enrol.js";
import { admin, enrolRequest, newNode, startApp, type TestApp, useStandInSaga } from "../function-app/index.js";

useStandInSaga();

let app: TestApp;
beforeEach(async () => {
  app = await startApp();
  expect((await app.createPool("edge", { maxInFlight: 10 })).status).toBe(201);
});
afterEach(async () => {
  await app.close();
});

const problemType = (res: { json: unknown }) => (res.json as { type: string }).type.replace("https://flexnode.dev/problems/", "");
const registry = () => new Registry({ connectionString: inject("azuriteConnectionString"), prefix: app.prefix });
const attackerKey = () => generateKeyPairSync("ed25519").privateKey;

describe("enrolment proves possession of the node key", () => {
  it("refuses an unsigned enrolment, and changes nothing", async () => {
    const node = newNode();
    const token = await app.createToken("edge");
    const before = await app.snapshot();
    const res = await app.call("POST", "/api/enrol", { body: { token, facts: node.facts, publicKey: node.publicKey } });
    expect([res.status, problemType(res)]).toEqual([401, "signature-missing"]);
    expect(res.headers["www-authenticate"]).toContain("Signature");
    expect(await app.snapshot()).toBe(before);
  });

  it("gives nothing to a repeat of a victim's public key and facts signed by another key, even with a fresh token", async () => {
    const victim = newNode();
    expect((await app.enrol(victim, await app.createToken("edge"))).status).toBe(201);
    const fresh = await app.createToken("edge");
    const before = await app.snapshot();
    const forged = await app.call(
      "POST",
      "/api/enrol",
      await enrolRequest(victim, { token: fresh, facts: victim.facts, publicKey: victim.publicKey }, { signer: attackerKey() }),
    );
    expect([forged.status, problemType(forged)]).toEqual([401, "signature-unknown-key"]);
    expect(forged.json).not.toHaveProperty("mailbox");
    expect(await app.snapshot()).toBe(before);
  });

  it("refuses a captured enrolment sent again (its nonce is spent)", async () => {
    const node = newNode();
    const request = await enrolRequest(node, { token: await app.createToken("edge", { maxUses: 2 }), facts: node.facts, publicKey: node.publicKey });
    expect((await app.call("POST", "/api/enrol", request)).status).toBe(201);
    const replayed = await app.call("POST", "/api/enrol", request);
    expect([replayed.status, problemType(replayed)]).toEqual([401, "signature-replayed"]);
  });

  it("answers the key's holder on a retry with its own used-up token, but never with a revoked or expired one", async () => {
    const node = newNode();
    const single = await app.createToken("edge");
    const { nodeId } = (await app.enrol(node, single)).json as { nodeId: string };
    // A retry after a lost answer: the single use was this node's own.
    expect((await app.enrol(node, single)).status).toBe(200);
    // Someone else's used-up token is not a way back in.
    const spent = await app.createToken("edge");
    expect((await app.enrol(newNode(), spent)).status).toBe(201);
    expect(problemType(await app.enrol(node, spent))).toBe("token-exhausted");

    const revoke = (token: string) => app.call("POST", `/api/manage/tokens/${token.split(".")[1]!}/revoke`, { headers: admin });
    expect((await revoke(single)).status).toBe(200);
    const revoked = await app.enrol(node, single);
    expect([revoked.status, problemType(revoked)]).toEqual([403, "token-revoked"]);
    expect(revoked.json).not.toHaveProperty("mailbox");

    const expiring = await app.createToken("edge", { expiresInHours: 1 });
    const later = () => new Date(Date.now() + 2 * 3600_000);
    const outcome = enrol(
      {
        registry: registry(),
        events: { publish: () => Promise.resolve() },
        now: later,
        workflows: {
          start: () => Promise.resolve(),
          status: () => Promise.resolve(undefined),
          terminate: () => Promise.resolve(),
          describe: () => Promise.resolve(undefined),
        },
      },
      { token: expiring, facts: node.facts, publicKey: node.publicKey, keyId: (await registry().nodes.get(nodeId))!.keyId },
    );
    await expect(outcome).rejects.toMatchObject({ code: "token-expired" });
  });
});
