/**
 * The node API's smaller holes (issue 12, item 7, service side), each reproduced against the code before its fix:
 * a retired node's key still acted for it, a node could take secret rows it was never offered, and control
 * characters in facts were stored as sent.
 */
import { randomBytes } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { inject } from "vitest";
import { signNodeRequest } from "../../contract/node-request.js";
import { Registry } from "../../orchestrations/clients/registry/registry.js";
import { OneTimeSecrets } from "../../orchestrations/clients/secrets/one-time-secrets.js";
import { admin, enrolRequest, newNode, startApp, type TestApp, type TestNode, useStandInSaga } from "../function-app/index.js";

useStandInSaga();

const SECRETS_KEY = randomBytes(32);
let app: TestApp;
beforeEach(async () => {
  app = await startApp({ settings: { SECRETS_KEY: SECRETS_KEY.toString("base64") } });
  expect((await app.createPool("edge")).status).toBe(201);
});
afterEach(async () => {
  await app.close();
});

const registry = () => new Registry({ connectionString: inject("azuriteConnectionString"), prefix: app.prefix });
const problemType = (res: { json: unknown }) => (res.json as { type: string }).type.replace("https://flexnode.dev/problems/", "");

async function signedCall(node: TestNode, method: string, path: string, body?: unknown) {
  const raw = body === undefined ? "" : JSON.stringify(body);
  const headers: Record<string, string> = {
    ...(await signNodeRequest({ method, url: path, body: raw }, { privateKey: node.privateKey, now: new Date() })),
    ...(body === undefined ? {} : { "content-type": "application/json" }),
  };
  return app.call(method, path, { headers, rawBody: raw || undefined });
}

describe("a retired node's key acts for nothing", () => {
  it("refuses facts, mailbox credentials and secrets to a rejected, a failed and an offboarded node; status stays readable", async () => {
    const rejected = newNode();
    const { nodeId: rejectedId } = (await app.enrol(rejected, await app.createToken("edge", { approvalRequired: true }))).json as { nodeId: string };
    expect((await app.call("POST", `/api/manage/nodes/${rejectedId}/reject`, { headers: admin })).status).toBe(200);

    const failed = newNode();
    const { nodeId: failedId } = (await app.enrol(failed, await app.createToken("edge"))).json as { nodeId: string };
    await registry().nodes.update({ pool: "edge", nodeId: failedId }, () => ({ status: "Failed" }), "test", "test.fail");

    const offboarded = newNode();
    const { nodeId: offboardedId } = (await app.enrol(offboarded, await app.createToken("edge"))).json as { nodeId: string };
    await registry().nodes.update({ pool: "edge", nodeId: offboardedId }, () => ({ status: "Offboarded" }), "test", "test.offboard");

    for (const [node, nodeId, status] of [
      [rejected, rejectedId, "Failed"],
      [failed, failedId, "Failed"],
      [offboarded, offboardedId, "Offboarded"],
    ] as const) {
      const before = await app.snapshot();
      const facts = await signedCall(node, "PUT", "/api/node/facts", { ...node.facts, kernel: "6.6.6-attacker" });
      expect([facts.status, problemType(facts)]).toEqual([409, "node-retired"]);
      const mailbox = await signedCall(node, "POST", "/api/node/mailbox-credentials");
      expect([mailbox.status, problemType(mailbox)]).toEqual([409, "node-retired"]);
      expect(mailbox.json).not.toHaveProperty("listenSas");
      const secret = await signedCall(node, "POST", "/api/node/secrets/bootstrap-kubeconfig");
      expect([secret.status, problemType(secret)]).toEqual([409, "node-retired"]);
      // Only nonces were written: the facts are as they were.
      expect((await registry().nodes.get(nodeId))!.facts.kernel).toBe(node.facts.kernel);
      expect(without("nonces", await app.snapshot())).toBe(without("nonces", before));
      // The agent still learns its fate.
      const read = await signedCall(node, "GET", "/api/node/status");
      expect([read.status, (read.json as { status: string }).status]).toEqual([200, status]);
    }
  });

  it("lets the same machine back in by enrolling again, after which its key works", async () => {
    const node = newNode();
    const token = await app.createToken("edge", { maxUses: 2 });
    const { nodeId } = (await app.enrol(node, token)).json as { nodeId: string };
    // Its (stand-in) saga ends failed, as a Failed node's has; one still finishing would make the retry wait (409).
    await app.simulator.runUntilIdle();
    app.simulator.raiseEvent(nodeId, "test-finish", "failed");
    await app.simulator.runUntilIdle();
    await registry().nodes.update({ pool: "edge", nodeId }, () => ({ status: "Failed" }), "test", "test.fail");
    expect((await app.enrol(node, token)).status).toBe(201);
    expect((await signedCall(node, "PUT", "/api/node/facts", { ...node.facts, kernel: "6.8.0" })).status).toBe(200);
  });

  it("keeps the facts an admin decides on: none are taken while the node awaits approval; the node's status names no admin", async () => {
    const node = newNode();
    const { nodeId } = (await app.enrol(node, await app.createToken("edge", { maxUses: 1, approvalRequired: true }))).json as { nodeId: string };
    const renamed = { ...node.facts, hostname: "payroll-db-01" };
    const refused = await signedCall(node, "PUT", "/api/node/facts", renamed);
    expect([refused.status, problemType(refused)]).toEqual([409, "awaiting-approval"]);
    expect((await registry().nodes.get(nodeId))!.facts.hostname).toBe(node.facts.hostname);

    expect((await app.call("POST", `/api/manage/nodes/${nodeId}/reject`, { headers: admin })).status).toBe(200);
    const status = await signedCall(node, "GET", "/api/node/status");
    expect(status.json).toMatchObject({ status: "Failed", lastError: { code: "Rejected", message: "rejected by an administrator" } });
    expect(status.body).not.toContain("alice@contoso.example");
  });
});

describe("one-time secrets: a node takes only what its plan offers it", () => {
  it("answers 404 for the service's own bootstrap-token row and leaves it; the offered kubeconfig is taken once", async () => {
    const node = newNode();
    const { nodeId } = (await app.enrol(node, await app.createToken("edge"))).json as { nodeId: string };
    const secrets = new OneTimeSecrets(registry(), SECRETS_KEY);
    const expires = new Date(Date.now() + 3600_000);
    // What issueBootstrapToken stores: the raw token for itself, the kubeconfig for the node's fetchSecret step.
    await secrets.putIfAbsent(nodeId, "bootstrap-kubeconfig.token", "abcdef.0123456789abcdef", expires, { offered: false });
    await secrets.putIfAbsent(nodeId, "bootstrap-kubeconfig", "apiVersion: v1\nkind: Config\n", expires, { offered: true });

    const internal = await signedCall(node, "POST", "/api/node/secrets/bootstrap-kubeconfig.token");
    expect([internal.status, problemType(internal)]).toEqual([404, "not-found"]);
    expect(internal.body).not.toContain("0123456789abcdef");
    // Still there for the saga's idempotent re-read.
    expect(await secrets.peek(nodeId, "bootstrap-kubeconfig.token")).toBe("abcdef.0123456789abcdef");

    const offered = await signedCall(node, "POST", "/api/node/secrets/bootstrap-kubeconfig");
    expect([offered.status, (offered.json as { value: string }).value]).toEqual([200, "apiVersion: v1\nkind: Config\n"]);
    expect((await signedCall(node, "POST", "/api/node/secrets/bootstrap-kubeconfig")).status).toBe(404);
  });

  it("never hands one node's offered secret to another node", async () => {
    const owner = newNode();
    const other = newNode();
    const { nodeId } = (await app.enrol(owner, await app.createToken("edge"))).json as { nodeId: string };
    expect((await app.enrol(other, await app.createToken("edge"))).status).toBe(201);
    await new OneTimeSecrets(registry(), SECRETS_KEY).putIfAbsent(nodeId, "bootstrap-kubeconfig", "kubeconfig", new Date(Date.now() + 3600_000), {
      offered: true,
    });
    expect((await signedCall(other, "POST", "/api/node/secrets/bootstrap-kubeconfig")).status).toBe(404);
    expect((await signedCall(owner, "POST", "/api/node/secrets/bootstrap-kubeconfig")).status).toBe(200);
  });
});

describe("control characters in facts are refused at the boundary", () => {
  it("refuses an enrolment whose facts carry an escape sequence or a bidi override, naming the field, and writes nothing", async () => {
    const token = await app.createToken("edge");
    for (const [field, facts] of [
      ["/facts/kernel", { kernel: "6.1.0\u001b[2J\u001b[31mpwned" }],
      ["/facts/osRelease/prettyName", { osRelease: { id: "debian", prettyName: "Debian\r\nX-Injected: 1" } }],
      ["/facts/osRelease/id", { osRelease: { id: "deb\u202Enaig" } }],
    ] as const) {
      const node = newNode(facts as Parameters<typeof newNode>[0]);
      const before = await app.snapshot();
      const res = await app.call("POST", "/api/enrol", await enrolRequest(node, { token, facts: node.facts, publicKey: node.publicKey }));
      expect([res.status, (res.json as { errors: { path: string }[] }).errors.map((e) => e.path)]).toEqual([422, [field]]);
      expect(without("nonces", await app.snapshot())).toBe(without("nonces", before));
    }
  });

  it("refuses such facts on PUT /api/node/facts and keeps the stored ones", async () => {
    const node = newNode();
    const { nodeId } = (await app.enrol(node, await app.createToken("edge"))).json as { nodeId: string };
    const res = await signedCall(node, "PUT", "/api/node/facts", { ...node.facts, kernel: "6.1.0\u0000\u0007" });
    expect([res.status, (res.json as { errors: { path: string }[] }).errors.map((e) => e.path)]).toEqual([422, ["/kernel"]]);
    expect((await registry().nodes.get(nodeId))!.facts.kernel).toBe(node.facts.kernel);
  });
});

const without = (table: string, snapshot: string) =>
  snapshot
    .split("\n")
    .filter((row) => !row.startsWith(`${table}:`))
    .join("\n");
