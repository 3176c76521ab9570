import { generateKeyPairSync } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { sealMessage, SIGNING_DOMAINS } from "../../contract/canonical-signing.js";
import { importPublicKey } from "../../contract/keys.js";
import { buildStepEnvelope, type StepEnvelope } from "../../contract/step-envelope.js";
import { verifyStepResult, type StepResult } from "../../contract/step-result.js";
import { loadIdentity } from "../src/identity.js";
import { RESULTS_QUEUE, startNodeService, type NodeService } from "./support-service/node-service.js";
import { enrolledNode, startAgent, type RunningAgent } from "./support-service/running-agent.js";
import { hashTree, type ScratchRoot } from "./support-service/scratch-root.js";
import { runsOnDisk } from "./support-service/test-host-side.js";

let service: NodeService;
let root: ScratchRoot;
let nodeId: string;
let agent: RunningAgent;
let treeBefore: string;

beforeEach(async () => {
  service = await startNodeService();
  ({ root, nodeId } = await enrolledNode(service));
  agent = startAgent({ root: root.dir });
  await agent.waitFor("mailbox-connected");
  treeBefore = await hashTree(root.dir);
});
afterEach(async () => {
  await agent.stop();
  await service.close();
  await root.remove();
});

const minutes = (n: number) => new Date(Date.now() + n * 60_000);

function envelope(overrides: Partial<Parameters<typeof buildStepEnvelope>[0]> = {}, key = service.serviceKey): StepEnvelope {
  return buildStepEnvelope(
    {
      nodeId,
      sagaId: `${nodeId}@1`,
      stepId: "sysctl",
      attempt: 1,
      kind: "sysctl",
      params: { settings: { "net.ipv4.ip_forward": "1" } },
      issuedAt: minutes(0),
      expiresAt: minutes(10),
      ...overrides,
    },
    { privateKey: key },
  );
}

/** A service-signed message that is not a valid v1 envelope (what a newer or broken service might send). */
function sealed(message: Record<string, unknown>, key = service.serviceKey): unknown {
  return sealMessage({ domain: SIGNING_DOMAINS.stepEnvelope, message: message as never, privateKey: key });
}

async function refusal(body: unknown) {
  const before = agent.events.filter((e) => e.type === "envelope-refused").length;
  await service.sendRaw(nodeId, body);
  await agent.waitFor("envelope-refused", () => agent.events.filter((e) => e.type === "envelope-refused").length > before);
  return agent.events.filter((e) => e.type === "envelope-refused").at(-1)!;
}

async function lastResult(): Promise<StepResult> {
  const raw = service.emulator.inspect.messages(RESULTS_QUEUE).at(-1)!.body;
  const identity = (await loadIdentity(root.dir))!;
  // The service's own check: schema, sender, and the node's signature.
  return verifyStepResult(raw, { nodeId, nodePublicKey: importPublicKey(identity.publicKey) });
}

describe("envelopes the service signed but the agent will not run: a signed failed result, and nothing on disk changes", () => {
  const cases: [string, () => unknown, string][] = [
    ["of a step kind this agent does not know", () => sealed({ ...withoutSignature(envelope()), kind: "formatDisk" }), "schema_invalid"],
    ["of a newer contract version", () => sealed({ ...withoutSignature(envelope()), version: 2 }), "unsupported_version"],
    ["with a field this agent does not know", () => sealed({ ...withoutSignature(envelope()), priority: "high" }), "schema_invalid"],
  ];

  for (const [what, make, code] of cases) {
    it(`refuses an envelope ${what} (${code})`, async () => {
      const body = make() as { stepId: string; sagaId: string; attempt: number };
      const event = await refusal(body);
      expect(event).toMatchObject({ code, disposition: "failed-result", step: { sagaId: body.sagaId, stepId: body.stepId, attempt: body.attempt } });
      const result = await lastResult();
      expect(result).toMatchObject({
        nodeId,
        sagaId: body.sagaId,
        stepId: body.stepId,
        attempt: body.attempt,
        outcome: "failed",
        error: { code, retryable: false },
      });
      expect(service.emulator.log.settlements(`node-${nodeId}`).map((s) => s.outcome)).toEqual(["completed"]);
      expect(await runsOnDisk(root.dir)).toEqual({});
      expect(await hashTree(root.dir)).toBe(treeBefore);
    });
  }
});

describe("envelopes the agent cannot verify: dead-lettered with the reason, never answered, nothing on disk changes", () => {
  const otherKey = () => generateKeyPairSync("ed25519").privateKey;
  const cases: [string, () => unknown, string][] = [
    ["without a signature", () => withoutSignature(envelope()), "schema_invalid"],
    ["signed by another key", () => envelope({}, otherKey()), "bad_signature"],
    ["altered after signing", () => ({ ...envelope(), params: { settings: { "kernel.panic": "0" } } }), "bad_signature"],
    [
      "whose signature block claims the service's key",
      () => ({ ...envelope({}, otherKey()), signature: { ...envelope().signature, value: envelope({}, otherKey()).signature.value } }),
      "bad_signature",
    ],
    ["of an unknown kind signed by another key", () => sealed({ ...withoutSignature(envelope()), kind: "formatDisk" }, otherKey()), "bad_signature"],
    ["of a newer version, unsigned", () => ({ ...withoutSignature(envelope()), version: 2 }), "unsupported_version"],
    ["addressed to another node", () => envelope({ nodeId: "fn-someoneelse00000000000000" }), "wrong_node"],
    [
      "of an unknown kind, addressed to another node",
      () => sealed({ ...withoutSignature(envelope({ nodeId: "fn-someoneelse00000000000000" })), kind: "formatDisk" }),
      "wrong_node",
    ],
    ["expired", () => envelope({ issuedAt: minutes(-30), expiresAt: minutes(-20) }), "envelope_expired"],
  ];

  for (const [what, make, code] of cases) {
    it(`dead-letters an envelope ${what} (${code})`, async () => {
      const body = make() as { stepId: string; sagaId: string; attempt: number };
      const event = await refusal(body);
      expect(event).toMatchObject({ code, disposition: "dead-lettered" });
      expect(event.step).toBeUndefined();
      const [dead] = service.emulator.inspect.messages(`node-${nodeId}`, { deadLetter: true });
      expect(dead).toMatchObject({ deadLetterReason: code, body });
      expect(dead!.deadLetterErrorDescription).toBe(event.message.slice(0, 1024));
      expect(service.emulator.log.settlements(`node-${nodeId}`).map((s) => s.outcome)).toEqual(["deadLettered"]);
      expect(service.emulator.inspect.messages(RESULTS_QUEUE)).toEqual([]);
      expect(await runsOnDisk(root.dir)).toEqual({});
      expect(await hashTree(root.dir)).toBe(treeBefore);
    });
  }

  it("a forged envelope naming a step that succeeded does not fail it: the only result is the real one", async () => {
    const real = envelope({ stepId: "sysctl" });
    await service.sendRaw(nodeId, real);
    expect(await agent.waitFor("step-finished")).toMatchObject({ stepId: "sysctl", outcome: "succeeded" });
    const forged = [withoutSignature(real), { ...real, params: { settings: { "net.ipv4.ip_forward": "0" } } }, envelope({ stepId: "sysctl" }, otherKey())];
    for (const body of forged) expect(await refusal(body)).toMatchObject({ disposition: "dead-lettered" });
    const results = service.emulator.inspect.messages(RESULTS_QUEUE);
    expect(results).toHaveLength(1);
    expect(await lastResult()).toMatchObject({ sagaId: real.sagaId, stepId: "sysctl", attempt: 1, outcome: "succeeded" });
    expect(service.emulator.inspect.messages(`node-${nodeId}`, { deadLetter: true })).toHaveLength(3);
    expect(await runsOnDisk(root.dir)).toEqual({ "sysctl.1": 1 });
  });

  it("dead-letters a message that names no step, with the reason", async () => {
    const event = await refusal({ hello: "world" });
    expect(event).toMatchObject({ disposition: "dead-lettered", code: "unsupported_version" });
    const [dead] = service.emulator.inspect.messages(`node-${nodeId}`, { deadLetter: true });
    expect(dead).toMatchObject({ deadLetterReason: "unsupported_version", body: { hello: "world" } });
    expect(dead!.deadLetterErrorDescription).toContain("StepEnvelope has no recognisable version");
    expect(service.emulator.inspect.messages(RESULTS_QUEUE)).toEqual([]);
    expect(await hashTree(root.dir)).toBe(treeBefore);
  });

  it("still runs a valid envelope after refusing others", async () => {
    await refusal(envelope({}, otherKey()));
    await service.sendRaw(nodeId, envelope({ stepId: "good" }));
    expect(await agent.waitFor("step-finished")).toMatchObject({ stepId: "good", outcome: "succeeded" });
    expect(await runsOnDisk(root.dir)).toEqual({ "good.1": 1 });
  });
});

function withoutSignature(e: StepEnvelope): Record<string, unknown> {
  const { signature: _signature, ...rest } = e;
  return rest;
}
