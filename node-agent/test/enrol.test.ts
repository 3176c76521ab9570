import { randomBytes } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { agentFiles } from "../src/agent-files.js";
import { AgentStateSchema } from "../src/agent-state.js";
import { enrolAgent } from "../src/agent.js";
import { loadIdentity } from "../src/identity.js";
import { UntrustedServerError } from "../src/http-transport.js";
import { ServiceRefusedError } from "../src/service-errors.js";
import { selfSignedCertificate } from "../../test/support/index.js";
import { startApp, type TestApp, useStandInSaga } from "../../test/function-app/index.js";
import { startHttpFront, type HttpFront, type Interception } from "./support-service/http-front.js";
import { HOSTS, scratchRoot, type ScratchRoot } from "./support-service/scratch-root.js";

useStandInSaga();

let app: TestApp;
let front: HttpFront;
let root: ScratchRoot;
/** Every wait the agent asked for, instead of waiting: the test asserts the delays, not wall time. */
let waits: number[];
const sleep = async (ms: number) => {
  waits.push(ms);
};

beforeEach(async () => {
  app = await startApp();
  expect((await app.createPool("edge")).status).toBe(201);
  front = await startHttpFront(app);
  // A machine of its own per test: a fresh machine-id, so no test looks like another's clone.
  root = await scratchRoot({ ...HOSTS.flatcar, "/etc/machine-id": `${randomBytes(16).toString("hex")}\n` });
  waits = [];
});
afterEach(async () => {
  await front.close();
  await app.close();
  await root.remove();
});

const enrolUrl = (token: string) => `${front.url}/api/enrol#${token}`;
const readState = async () => AgentStateSchema.parse(JSON.parse(await readFile(agentFiles(root.dir).stateFile, "utf8")));

describe("enrolment against the service", () => {
  it("enrols (201), writes a private state file, and a second enrol with the same key is an idempotent 200", async () => {
    const token = await app.createToken("edge", { maxUses: 1 });
    const progress: string[] = [];
    const first = await enrolAgent({ root: root.dir, url: enrolUrl(token), sleep, onProgress: (l) => progress.push(l) });
    expect(first).toMatchObject({ httpStatus: 201, pool: "edge", status: "Enrolling", identityCreated: true, serviceUrl: front.url });
    expect(first.nodeId).toMatch(/^fn-[0-9a-f]{24}$/);

    const identity = (await loadIdentity(root.dir))!;
    const state = await readState();
    expect(state).toMatchObject({
      nodeId: first.nodeId,
      pool: "edge",
      keyId: identity.keyId,
      serviceUrl: front.url,
      nodeApi: { statusPath: "/api/node/status", mailboxCredentialsPath: "/api/node/mailbox-credentials" },
      mailbox: { queue: `node-${first.nodeId}`, resultsQueue: "node-results" },
      results: [],
    });
    expect((await stat(agentFiles(root.dir).stateFile)).mode & 0o777).toBe(0o600);
    // Mailbox tokens stay in memory; the token never reaches a URL, the state, or the progress output.
    const stateText = await readFile(agentFiles(root.dir).stateFile, "utf8");
    expect(stateText).not.toMatch(/SharedAccessSignature|sig=/);
    expect(stateText).not.toContain(token);
    expect(progress.join("\n")).not.toContain(token.split(".")[2]!);
    expect(front.seen.map((r) => `${r.method} ${r.url}`)).toEqual(["POST /api/enrol"]);
    expect(JSON.parse(front.seen[0]!.body)).toMatchObject({
      token,
      publicKey: identity.publicKey,
      facts: { machineId: expect.any(String), immutable: { flatcar: true, readOnlyUsr: true } },
    });

    // The token is used up; the service still recognises this node's key and answers 200 with the same node.
    const again = await enrolAgent({ root: root.dir, url: enrolUrl(token), sleep });
    expect(again).toMatchObject({ httpStatus: 200, nodeId: first.nodeId, identityCreated: false, keyId: identity.keyId });
    expect((await readState()).enrolledAt).toBe(state.enrolledAt);
    expect(app.simulator.instanceIds()).toEqual([first.nodeId]);
  });

  it("waits exactly as long as a 429's or 503's Retry-After says, then enrols", async () => {
    const token = await app.createToken("edge");
    front.intercept = (_req, index): Interception =>
      index === 0
        ? {
            // The platform's own throttling (the app answers no 429 to enrolment since pools let nodes wait).
            status: 429,
            headers: { "retry-after": "7" },
          }
        : index === 1
          ? { status: 503, headers: { "retry-after": "2" } }
          : undefined;
    const progress: string[] = [];
    const result = await enrolAgent({ root: root.dir, url: enrolUrl(token), sleep, onProgress: (l) => progress.push(l) });
    expect(result.httpStatus).toBe(201);
    expect(waits).toEqual([7_000, 2_000]);
    expect(front.seen).toHaveLength(3);
    expect(progress).toContain("enrolment: HTTP 429; retry 1 in 7 s");
  });

  it("backs off with jitter when the service is unreachable or failing, within the policy's bounds", async () => {
    const token = await app.createToken("edge");
    front.intercept = (_req, index) => (index === 0 ? "drop" : index < 3 ? { status: 502 } : undefined);
    const result = await enrolAgent({ root: root.dir, url: enrolUrl(token), sleep, random: () => 0.5, backoff: { baseMs: 1_000, maxMs: 60_000 } });
    expect(result.httpStatus).toBe(201);
    // Full jitter at random()=0.5: half of 1 s, 2 s, 4 s.
    expect(waits).toEqual([500, 1_000, 2_000]);
  });

  it("gives up after the policy's attempts, naming the last answer", async () => {
    const token = await app.createToken("edge");
    front.intercept = () => ({ status: 503, headers: { "retry-after": "1" } });
    await expect(enrolAgent({ root: root.dir, url: enrolUrl(token), sleep, backoff: { maxAttempts: 3 } })).rejects.toThrow(
      /^enrolment failed 3 times; last: enrolment refused \(503 unknown\)/,
    );
    expect(front.seen).toHaveLength(3);
    expect(waits).toEqual([1_000, 1_000]);
  });

  it("stops at a refusal with the problem's type and detail, without retrying or writing state", async () => {
    const bogus = `fnt.${"0".repeat(16)}.${"A".repeat(43)}`;
    const error = await enrolAgent({ root: root.dir, url: enrolUrl(bogus), sleep }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ServiceRefusedError);
    expect(error).toMatchObject({ status: 403, problem: { type: "token-unknown" } });
    expect((error as Error).message).toMatch(/^enrolment refused \(403 token-unknown\)/);
    expect(waits).toEqual([]);
    expect(front.seen).toHaveLength(1);
    await expect(stat(agentFiles(root.dir).stateFile)).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("shows the failing field of a 400", async () => {
    const token = await app.createToken("edge");
    await root.write("/proc/sys/kernel/osrelease", `${"6".repeat(40)}\n`);
    // A service that wants something the agent sent differently: forge the answer a validation failure gets.
    front.intercept = () => ({
      status: 400,
      headers: { "content-type": "application/problem+json" },
      body: JSON.stringify({
        type: "https://flexnode.dev/problems/invalid-body",
        title: "The request body is not valid",
        status: 400,
        errors: [{ path: "/facts/kernel", message: "Too big" }],
      }),
    });
    await expect(enrolAgent({ root: root.dir, url: enrolUrl(token), sleep })).rejects.toThrow(
      "enrolment refused (400 invalid-body): The request body is not valid [/facts/kernel: Too big]",
    );
  });

  it("answers 202 for a token that needs approval, and records that the node waits", async () => {
    const token = await app.createToken("edge", { approvalRequired: true });
    const result = await enrolAgent({ root: root.dir, url: enrolUrl(token), sleep });
    expect(result).toMatchObject({ httpStatus: 202, status: "AwaitingApproval", approval: "approval-required" });
    const state = await readState();
    expect(state.status).toBe("AwaitingApproval");
    expect(state.mailbox).toBeUndefined();
  });

  it("enrols over HTTPS with the service's private CA from caFile, and refuses the server without it, without retrying", async () => {
    const tls = await selfSignedCertificate();
    const https = await startHttpFront(app, { tls });
    try {
      const token = await app.createToken("edge");
      const untrusted = await enrolAgent({ root: root.dir, url: `${https.url}/api/enrol#${token}`, sleep }).catch((e: unknown) => e);
      expect(untrusted).toBeInstanceOf(UntrustedServerError);
      expect((untrusted as Error).message).toMatch(/not trusted \((DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN)\); .* set caFile/);
      expect(waits).toEqual([]);
      expect(https.seen).toEqual([]);
      expect((await enrolAgent({ root: root.dir, url: `${https.url}/api/enrol#${token}`, ca: tls.cert, sleep })).httpStatus).toBe(201);
      expect(https.seen.map((r) => r.url)).toEqual(["/api/enrol"]);
    } finally {
      await https.close();
    }
  });

  it("refuses plain http to anything but this machine, and a token in the query string", async () => {
    const token = await app.createToken("edge");
    await expect(enrolAgent({ root: root.dir, url: `http://flexnode.example/api/enrol#${token}`, sleep })).rejects.toThrow(/must be https:\/\//);
    const error = (await enrolAgent({ root: root.dir, url: `${front.url}/api/enrol?token=${token}`, sleep }).catch((e: unknown) => e)) as Error;
    expect(error.message).toMatch(/must not have a query string/);
    expect(error.message).not.toContain(token);
    expect(front.seen).toEqual([]);
  });
});
