import { createHash, generateKeyPairSync } from "node:crypto";
import { AzureSASCredential } from "@azure/core-auth";
import { ServiceBusClient } from "@azure/service-bus";
import * as df from "durable-functions";
import type { OrchestrationContext } from "durable-functions";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { inject } from "vitest";
import { findSecrets } from "../../contract/secrets.js";
import { buildStepResult, type StepResult } from "../../contract/step-result.js";
import { REJECTED_RESULTS_QUEUE, RESULTS_QUEUE } from "../../orchestrations/clients/mailbox/mailbox.js";
import { stepResultEvent } from "../../orchestrations/onboard/saga-run.js";
import { REJECTIONS_PER_WINDOW } from "../../orchestrations/use-cases/node-results.js";
import { Registry } from "../../orchestrations/clients/registry/registry.js";
import { mailboxRules, newNode, startApp, type TestApp, type TestNode } from "../function-app/index.js";
import { startServiceBusTriggers, type RunningTriggers } from "../functions-host/index.js";
import { DEFAULT_RULE, ServiceBusEmulator, type RunningEmulator } from "../servicebus-emulator/index.js";
import { EventType } from "../durable/index.js";

// A saga run that waits for two step results, as the onboarding saga does.
const RUN = "0123456789ab";
df.app.orchestration("onboardNode", function* (context: OrchestrationContext) {
  const first: unknown = yield context.df.waitForExternalEvent(stepResultEvent(RUN, "step-1", 1));
  context.df.setCustomStatus({ got: ["step-1"] });
  const second: unknown = yield context.df.waitForExternalEvent(stepResultEvent(RUN, "step-2", 1));
  return [first, second];
});

let emulator: ServiceBusEmulator;
let sb: RunningEmulator;
let app: TestApp;
let triggers: RunningTriggers;
let node: TestNode;
let nodeId: string;
let sender: ServiceBusClient;

beforeEach(async () => {
  emulator = new ServiceBusEmulator({
    rules: [DEFAULT_RULE, { ...mailboxRules.listen, rights: ["Listen"] }, { ...mailboxRules.send, rights: ["Send"] }],
    queues: [{ name: RESULTS_QUEUE, maxDeliveryCount: 5 }, { name: REJECTED_RESULTS_QUEUE }],
  });
  sb = await emulator.start();
  app = await startApp({ serviceBus: { connectionString: sb.connectionString(), nodeNamespace: sb.credentialNamespace } });
  await app.createPool("edge");
  node = newNode();
  const enrolled = (await app.enrol(node, await app.createToken("edge"))).json as {
    nodeId: string;
    mailbox: { namespace: string; sendSas: string; resultsQueue: string };
  };
  nodeId = enrolled.nodeId;
  // The node answers with the Send token it was given at enrolment, exactly as the agent will.
  sender = new ServiceBusClient(enrolled.mailbox.namespace, new AzureSASCredential(enrolled.mailbox.sendSas));
  triggers = startServiceBusTriggers(app.host);
  await app.simulator.runUntilIdle();
});
afterEach(async () => {
  await triggers.close();
  await sender.close();
  await app.close();
  await emulator.stop();
});

const registry = () => new Registry({ connectionString: inject("azuriteConnectionString"), prefix: app.prefix });

function result(stepId: string, overrides: { key?: TestNode["privateKey"]; nodeId?: string; sagaId?: string } = {}): StepResult {
  const at = new Date();
  return buildStepResult(
    {
      nodeId: overrides.nodeId ?? nodeId,
      sagaId: overrides.sagaId ?? `${nodeId}@${RUN}`,
      stepId,
      attempt: 1,
      outcome: "succeeded",
      output: { changed: true },
      startedAt: at,
      finishedAt: at,
      manifestDigest: `sha256:${"a".repeat(64)}`,
    },
    { privateKey: overrides.key ?? node.privateKey },
  );
}

async function post(body: unknown, messageId: string): Promise<void> {
  await sender.createSender(RESULTS_QUEUE).sendMessages({ body, messageId, contentType: "application/json" });
  await until(() => triggers.invocations.some((i) => i.messageId === messageId));
  await app.simulator.runUntilIdle();
}

const raisedEvents = (name: string) => app.simulator.history(nodeId).filter((e) => e.EventType === EventType.EventRaised && e.Name === name);

describe("node-results trigger", () => {
  it("hands a valid signed result to the node's saga as its step event", async () => {
    await post(result("step-1"), "r1");
    expect(app.simulator.getStatus(nodeId)?.customStatus).toEqual({ got: ["step-1"] });
    await post(result("step-2"), "r2");
    const done = app.simulator.getStatus(nodeId)!;
    expect(done.runtimeStatus).toBe("Completed");
    expect(done.output).toMatchObject([{ stepId: "step-1", attempt: 1, outcome: "succeeded", output: { changed: true } }, { stepId: "step-2" }]);
    expect(triggers.invocations.map((i) => i.outcome)).toEqual(["completed", "completed"]);
  });

  it("raises a replayed result once: the saga does not see it twice", async () => {
    const once = result("step-1");
    await post(once, "dup-a");
    await post(once, "dup-b");
    expect(raisedEvents(stepResultEvent(RUN, "step-1", 1))).toHaveLength(1);
    expect(app.simulator.getStatus(nodeId)?.runtimeStatus).toBe("Running");
    expect(emulator.inspect.queue(REJECTED_RESULTS_QUEUE)).toMatchObject({ active: 0 });
  });

  it("moves a forged result (wrong key) aside with its reason, audits it against no node, and leaves the saga alone", async () => {
    await post(result("step-1", { key: generateKeyPairSync("ed25519").privateKey }), "forged");
    expect(raisedEvents(stepResultEvent(RUN, "step-1", 1))).toHaveLength(0);
    const [rejected] = emulator.inspect.messages(REJECTED_RESULTS_QUEUE);
    expect(rejected).toMatchObject({ messageId: "forged", applicationProperties: { DeadLetterReason: "SignatureInvalid", originalMessageId: "forged" } });
    expect(String(rejected!.applicationProperties.DeadLetterErrorDescription)).toMatch(/bad_signature/);
    // Unverified, so not charged to the node it names: any node's Send token could have sent it.
    expect(rejected!.body).toMatchObject({ reason: "SignatureInvalid", claimedNodeId: nodeId });
    expect(rejected!.body).not.toHaveProperty("nodeId");
    expect(await registry().audit.list({ objectId: nodeId })).not.toContainEqual(expect.objectContaining({ action: "result.rejected" }));
    const audit = await registry().audit.list({ objectId: "unknown" });
    expect(audit).toContainEqual(
      expect.objectContaining({ action: "result.rejected", details: expect.objectContaining({ reason: "SignatureInvalid", claimedNodeId: nodeId }) }),
    );
    // The original is completed, not retried.
    expect(triggers.invocations.filter((i) => i.messageId === "forged").map((i) => i.outcome)).toEqual(["completed"]);
  });

  it("moves aside results that fail the schema or name an unknown node", async () => {
    await post({ version: 1, nodeId, stepId: "x" }, "bad-schema");
    await post(result("step-1", { nodeId: `fn-${"0".repeat(24)}` }), "stranger");
    await post({ version: 2, nodeId }, "from-the-future");
    // Signed by the node, but for a saga that is not one of its own (or names no run).
    await post(result("step-1", { sagaId: `fn-${"1".repeat(24)}@${RUN}` }), "other-saga");
    await post(result("step-1", { sagaId: nodeId }), "no-run");
    const reasons = emulator.inspect.messages(REJECTED_RESULTS_QUEUE).map((m) => [m.messageId, m.applicationProperties.DeadLetterReason]);
    expect(reasons).toEqual([
      ["bad-schema", "SchemaInvalid"],
      ["stranger", "UnknownNode"],
      ["from-the-future", "SchemaInvalid"],
      ["other-saga", "UnknownSaga"],
      ["no-run", "UnknownSaga"],
    ]);
    expect(app.simulator.getStatus(nodeId)?.runtimeStatus).toBe("Running");
  });

  it("keeps a digest of garbage, never the body, and records at most its quota per sender per window", async () => {
    const forged = (i: number) => ({
      ...result("step-1", { key: generateKeyPairSync("ed25519").privateKey }),
      output: { junk: `MARKER-${i}-${"x".repeat(2000)}` },
    });
    const sent: { id: string; bytes: number; sha256: string }[] = [];
    for (let i = 0; i < REJECTIONS_PER_WINDOW + 5; i++) {
      const body = forged(i);
      const text = JSON.stringify(body);
      sent.push({ id: `junk-${i}`, bytes: Buffer.byteLength(text), sha256: createHash("sha256").update(text).digest("hex") });
      await post(body, `junk-${i}`);
    }
    // Not JSON at all, naming no node: the same shared quota as every other unproven sender's, spent already.
    for (let i = 0; i < 3; i++) await post(`MARKER-raw-${i}`, `raw-${i}`);
    // The node's own result, signed but for no saga of its own: proven to be the node's, so within the node's quota.
    await post(result("step-1", { sagaId: `${nodeId}@nope` }), "own");
    // Every message was completed, none retried.
    expect(triggers.invocations.filter((i) => /^(junk|raw)-|^own$/.test(i.messageId ?? "")).every((i) => i.outcome === "completed")).toBe(true);

    const aside = emulator.inspect.messages(REJECTED_RESULTS_QUEUE);
    expect(aside.map((m) => m.messageId)).toEqual([...sent.slice(0, REJECTIONS_PER_WINDOW).map((s) => s.id), "own"]);
    expect(JSON.stringify(emulator.log.enqueued(REJECTED_RESULTS_QUEUE))).not.toContain("MARKER");
    expect(aside[0]!.body).toEqual({
      reason: "SignatureInvalid",
      description: expect.stringMatching(/bad_signature/),
      claimedNodeId: nodeId,
      sha256: sent[0]!.sha256,
      size: sent[0]!.bytes,
    });
    expect(aside.at(-1)!.body).toMatchObject({ reason: "UnknownSaga", nodeId });
    const audit = (await registry().audit.list()).filter((a) => a.action === "result.rejected");
    expect(audit.filter((a) => a.objectId === nodeId).map((a) => a.details?.reason)).toEqual(["UnknownSaga"]);
    expect(audit.filter((a) => a.objectId === "unknown")).toHaveLength(REJECTIONS_PER_WINDOW);
    expect(JSON.stringify(audit)).not.toContain("MARKER");
    expect(audit.find((a) => a.objectId === "unknown")?.details).toMatchObject({
      reason: "SignatureInvalid",
      claimedNodeId: nodeId,
      sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
  });

  it("treats a late result for a finished or purged saga as harmless", async () => {
    app.simulator.terminate(nodeId, "operator");
    await app.simulator.runUntilIdle();
    await post(result("step-1"), "late");
    expect(triggers.invocations.find((i) => i.messageId === "late")?.outcome).toBe("completed");
    expect(app.simulator.getStatus(nodeId)?.runtimeStatus).toBe("Terminated");
    app.simulator.purge(nodeId);
    await post(result("step-2"), "later");
    expect(triggers.invocations.find((i) => i.messageId === "later")?.outcome).toBe("completed");
  });

  it("keys step events by URL-safe names, distinct for distinct step ids", async () => {
    const { stepResultEvent: name } = await import("../../orchestrations/onboard/saga-run.js");
    expect(name(RUN, "container-runtime", 2)).toBe(`step-result.${RUN}.container-runtime.2`);
    expect(name(RUN, "a/b", 1)).toMatch(/^step-result\.0123456789ab\.a_b~[0-9a-f]{8}\.1$/);
    expect(name(RUN, "a/b", 1)).not.toBe(name(RUN, "a_b", 1));
    expect(name(RUN, "a/b", 1)).not.toBe(name(RUN, "a?b", 1));
    // Another run of the same instance waits for a different event.
    expect(name("ba9876543210", "reset", 1)).not.toBe(name(RUN, "reset", 1));
  });

  it("lets nothing secret-shaped reach any queue", async () => {
    await post(result("step-1"), "r1");
    await post(result("step-1", { key: generateKeyPairSync("ed25519").privateKey }), "forged");
    const enqueued = emulator.log.of("enqueued");
    expect(enqueued.length).toBeGreaterThanOrEqual(3);
    expect(enqueued.flatMap((e) => [...findSecrets(e.body), ...findSecrets(e.applicationProperties)])).toEqual([]);
  });
});

async function until(condition: () => boolean, timeoutMs = 8000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}
