import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { ServiceBusClient } from "@azure/service-bus";
import { afterEach, describe, expect, it, vi } from "vitest";
import { importPublicKey } from "../../contract/keys.js";
import { verifyStepResult, type StepResult } from "../../contract/step-result.js";
import { AgentStateStore } from "../src/agent-state.js";
import { loadIdentity } from "../src/identity.js";
import { RESULTS_QUEUE, startNodeService, type NodeService } from "./support-service/node-service.js";
import { enrolledNode, startAgent, type RunningAgent } from "./support-service/running-agent.js";
import type { ScratchRoot } from "./support-service/scratch-root.js";
import { runsOnDisk } from "./support-service/test-host-side.js";
import { hashTree } from "./support-service/scratch-root.js";
import { realHostSide } from "../src/host-side.js";
import { manifestDigestAt } from "../src/manifest.js";

let service: NodeService;
let root: ScratchRoot;
const agents: RunningAgent[] = [];

afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.stop()));
  vi.restoreAllMocks();
  await service.close();
  await root.remove();
});

async function node(options: Parameters<typeof startNodeService>[0] = {}) {
  service = await startNodeService(options);
  const enrolled = await enrolledNode(service);
  root = enrolled.root;
  return enrolled.nodeId;
}

function agent(extra: Partial<Parameters<typeof startAgent>[0]> = {}): RunningAgent {
  const a = startAgent({ root: root.dir, ...extra });
  agents.push(a);
  return a;
}

const results = (): StepResult[] => service.emulator.inspect.messages(RESULTS_QUEUE).map((m) => m.body as StepResult);

async function verified(nodeId: string, result: StepResult) {
  const identity = (await loadIdentity(root.dir))!;
  return verifyStepResult(result, { nodeId, nodePublicKey: importPublicKey(identity.publicKey) });
}

describe("the mailbox loop against Service Bus (emulator, unmodified SDK)", () => {
  it("receives a step, runs it once while renewing the lock past lockDuration, sends the signed result, then completes", async () => {
    const nodeId = await node({ lockDurationMs: 1_000 });
    const a = agent();
    await a.waitFor("mailbox-connected");
    const envelope = await service.sendStep(nodeId, { stepId: "slow-step", params: { holdMs: 3_000 } });
    const finished = await a.waitFor("step-finished");

    expect(finished).toMatchObject({ stepId: "slow-step", attempt: 1, outcome: "succeeded", sagaId: envelope.sagaId });

    const log = service.emulator.log;
    const queue = `node-${nodeId}`;
    // One delivery (the lock never lapsed), renewed while the step ran, completed after the result was enqueued.
    expect(log.deliveries(queue)).toHaveLength(1);
    expect(log.of("lockRenewed", (e) => e.queue === queue).length).toBeGreaterThanOrEqual(2);
    const settled = log.settlements(queue);
    expect(settled).toMatchObject([{ outcome: "completed", result: "ok" }]);
    const enqueued = log.enqueued(RESULTS_QUEUE);
    expect(enqueued).toHaveLength(1);
    expect(enqueued[0]!.seq).toBeLessThan(settled[0]!.seq);
    // The result went out on a link authorised by the node's Send token, scoped to the results queue only.
    expect(enqueued[0]!.link.authorizedBy).toMatchObject({ ruleName: "flexnode-node-send", scopeUri: `${service.sb.endpoint}/${RESULTS_QUEUE}` });
    expect(service.emulator.inspect.queue(queue)).toMatchObject({ active: 0, deadLettered: 0 });

    const [result] = results();
    const ok = await verified(nodeId, result!);
    expect(ok).toMatchObject({ nodeId, sagaId: envelope.sagaId, stepId: "slow-step", attempt: 1, outcome: "succeeded", output: { ran: "slow-step" } });
    expect(await runsOnDisk(root.dir)).toEqual({ "slow-step.1": 1 });
    // Nothing is left "current", and the signed result is remembered for redeliveries.
    const state = await new AgentStateStore(root.dir).require();
    expect(state.current).toBeUndefined();
    expect(state.results.map((r) => r.result)).toEqual([result]);

    // A resident agent holds one connection of the namespace's 5,000: the result went out on one closed after the send.
    const withAgent = service.emulator.connectionCount;
    await a.stop();
    await expect.poll(() => withAgent - service.emulator.connectionCount, { timeout: 5_000 }).toBe(1);
  });

  it("refreshes the SAS tokens mid-step with credential.update, keeps its one receiver, and receives on the refreshed token", async () => {
    const createReceiver = vi.spyOn(ServiceBusClient.prototype, "createReceiver");
    const nodeId = await node({ sasLifetimeMs: 7_000, refreshAfterMs: 3_000 });
    const a = agent();
    const connected = await a.waitFor("mailbox-connected");
    const firstExpiry = Date.parse(connected.credentialsExpireAt);
    await service.sendStep(nodeId, { stepId: "long-step", params: { holdMs: 5_000 } });
    const refreshed = await a.waitFor("credentials-refreshed");
    // The refresh happened while the step ran.
    expect(a.events.some((e) => e.type === "step-started")).toBe(true);
    expect(a.events.some((e) => e.type === "step-finished")).toBe(false);
    expect(await a.waitFor("step-finished", (e) => e.stepId === "long-step")).toMatchObject({ outcome: "succeeded" });
    expect(Date.parse(refreshed.expiresAt)).toBeGreaterThan(firstExpiry);

    // The SDK re-puts a SAS token only every 45 minutes, so the broker drops the link when the first token lapses; the
    // SDK re-attaches with the credential's current (refreshed) token, and the next envelope arrives on that link.
    const queue = `node-${nodeId}`;
    await service.emulator.log.waitFor(
      "linkAttached",
      (e) => e.role === "receive" && e.entityPath === queue && e.link.authorizedBy.tokenExpiresAt > firstExpiry,
      10_000,
    );
    await service.sendStep(nodeId, { stepId: "after-refresh" });
    expect(await a.waitFor("step-finished", (e) => e.stepId === "after-refresh")).toMatchObject({ outcome: "succeeded" });

    expect(createReceiver).toHaveBeenCalledTimes(1);
    const lastDelivery = service.emulator.log.deliveries(queue).at(-1)!;
    expect(lastDelivery.link.authorizedBy.tokenExpiresAt).toBeGreaterThan(firstExpiry);
    expect(service.emulator.log.settlements(queue).map((s) => [s.messageId, s.outcome, s.result])).toEqual([
      ["long-step/1", "completed", "ok"],
      ["after-refresh/1", "completed", "ok"],
    ]);
    expect(results().map((r) => r.stepId)).toEqual(["long-step", "after-refresh"]);
    expect(await runsOnDisk(root.dir)).toEqual({ "after-refresh.1": 1, "long-step.1": 1 });
  });

  it("when the lock is lost before completion, answers the redelivery with the remembered result instead of running again", async () => {
    const nodeId = await node({ lockDurationMs: 1_000 });
    // No lock renewal at all: the lock lapses while the step runs, as after a long network outage.
    const a = agent({ maxStepMs: 0, lockMarginMs: 0, settleTimeoutMs: 5_000 });
    await a.waitFor("mailbox-connected");
    await service.sendStep(nodeId, { stepId: "outlives-lock", params: { holdMs: 2_500 } });
    await a.waitFor("result-resent", undefined, 15_000);
    expect(await runsOnDisk(root.dir)).toEqual({ "outlives-lock.1": 1 });
    const queue = `node-${nodeId}`;
    expect(service.emulator.log.deliveries(queue).map((d) => d.deliveryCount)).toEqual([0, 1]);
    expect(service.emulator.log.settlements(queue).map((s) => s.result)).toEqual(["lockLost", "ok"]);
    const [first, second] = results();
    expect(second).toEqual(first);
    expect(a.events.some((e) => e.type === "error" && e.where === "settle")).toBe(true);
  });

  it("runs a duplicate delivery once and answers it with the same signed result, also after a restart", async () => {
    const nodeId = await node();
    let a = agent();
    await a.waitFor("mailbox-connected");
    const envelope = await service.sendStep(nodeId, { stepId: "dup" });
    // The service sends the very same envelope again (an activity retried after a lost acknowledgement).
    await service.sendRaw(nodeId, envelope);
    await a.waitFor("result-resent");
    expect(await runsOnDisk(root.dir)).toEqual({ "dup.1": 1 });
    expect(a.events.filter((e) => e.type === "step-started")).toHaveLength(1);

    await a.stop();
    agents.splice(agents.indexOf(a), 1);
    a = agent();
    await a.waitFor("mailbox-connected");
    await service.sendRaw(nodeId, envelope);
    await a.waitFor("result-resent");
    expect(await runsOnDisk(root.dir)).toEqual({ "dup.1": 1 });

    const sent = results();
    expect(sent).toHaveLength(3);
    expect(sent[1]).toEqual(sent[0]);
    expect(sent[2]).toEqual(sent[0]);
    await verified(nodeId, sent[0]!);
    expect(service.emulator.log.settlements(`node-${nodeId}`).map((s) => s.outcome)).toEqual(["completed", "completed", "completed"]);
    // A new attempt of the same step is a new run.
    await service.sendStep(nodeId, { stepId: "dup", attempt: 2 });
    await a.waitFor("step-finished", (e) => e.attempt === 2);
    expect(await runsOnDisk(root.dir)).toEqual({ "dup.1": 1, "dup.2": 1 });
  });

  it("reports a failed step as a signed failed result and completes the message", async () => {
    const nodeId = await node();
    const a = agent();
    await a.waitFor("mailbox-connected");
    await service.sendStep(nodeId, { stepId: "bad", params: { fail: true } });
    expect(await a.waitFor("step-finished")).toMatchObject({ outcome: "failed", errorCode: "TestFailure" });
    const result = await verified(nodeId, results()[0]!);
    expect(result).toMatchObject({ outcome: "failed", error: { code: "TestFailure", retryable: false } });
  });

  it("waits for approval by polling the node status, then connects", async () => {
    service = await startNodeService();
    const enrolled = await enrolledNode(service, { approval: true });
    root = enrolled.root;
    const a = agent();
    await a.waitFor("waiting-for-approval");
    expect(a.events.some((e) => e.type === "mailbox-connected")).toBe(false);
    service.nodes.get(enrolled.nodeId)!.status = "Enrolling";
    await a.waitFor("mailbox-connected", undefined, 10_000);
    expect(service.calls.filter((c) => c === "GET /api/node/status").length).toBeGreaterThanOrEqual(1);
    expect((await new AgentStateStore(root.dir).require()).mailbox?.queue).toBe(`node-${enrolled.nodeId}`);
  });

  it("runs steps with the real executors: params checked against the per-kind schemas, the manifest digest in the result", async () => {
    const nodeId = await node();
    const a = agent({ hostSide: realHostSide });
    await a.waitFor("mailbox-connected");
    await service.sendStep(nodeId, {
      stepId: "kubelet-config",
      params: { files: [{ path: "/etc/flexnode/kubelet/config.yaml", mode: "0644", content: "kind: KubeletConfiguration\n" }] },
    });
    expect(await a.waitFor("step-finished", (e) => e.stepId === "kubelet-config")).toMatchObject({ outcome: "succeeded" });
    expect(await readFile(join(root.dir, "/etc/flexnode/kubelet/config.yaml"), "utf8")).toBe("kind: KubeletConfiguration\n");
    const ok = await verified(nodeId, results()[0]!);
    expect(ok.manifestDigest).toBe(await manifestDigestAt(root.dir));
    expect((await new AgentStateStore(root.dir).require()).results).toHaveLength(1);

    // A signed envelope whose params break its kind's schema (a write under /usr) is refused before any executor runs.
    const before = await hashTree(root.dir);
    await service.sendStep(nodeId, { stepId: "sneaky", params: { files: [{ path: "/usr/bin/kubelet", mode: "0755", content: "#!/bin/sh\n" }] } });
    const refused = await a.waitFor("envelope-refused");
    expect(refused).toMatchObject({ code: "schema_invalid", disposition: "failed-result", step: { stepId: "sneaky" } });
    expect(refused.message).toContain("/params/files/0/path");
    expect((await verified(nodeId, results()[1]!)).manifestDigest).toBe(ok.manifestDigest);
    expect(await hashTree(root.dir)).toBe(before);
  });

  it("after a reset, a replayed envelope of an answered step is not applied again: dead-lettered, nothing sent", async () => {
    const nodeId = await node();
    const a = agent({ hostSide: realHostSide });
    await a.waitFor("mailbox-connected");
    const written = join(root.dir, "/etc/flexnode/kubelet/config.yaml");
    const files = await service.sendStep(nodeId, {
      stepId: "kubelet-config",
      params: { files: [{ path: "/etc/flexnode/kubelet/config.yaml", mode: "0644", content: "kind: KubeletConfiguration\n" }] },
    });
    expect(await a.waitFor("step-finished", (e) => e.stepId === "kubelet-config")).toMatchObject({ outcome: "succeeded" });
    await service.sendStep(nodeId, { stepId: "reset", kind: "reset", params: { scope: "all" } });
    expect(await a.waitFor("step-finished", (e) => e.stepId === "reset")).toMatchObject({ outcome: "succeeded" });
    await expect(readFile(written)).rejects.toMatchObject({ code: "ENOENT" });
    const afterReset = await hashTree(root.dir);
    // The reset forgot the signed results, but not which attempts were answered.
    const state = await new AgentStateStore(root.dir).require();
    expect(state.results.map((r) => r.stepId)).toEqual(["reset"]);
    expect(state.answered.map((r) => r.stepId)).toEqual(["kubelet-config", "reset"]);

    // The captured envelope is still valid (10 minutes): replayed, it is refused and nothing on the host changes.
    await service.sendRaw(nodeId, files);
    expect(await a.waitFor("envelope-refused")).toMatchObject({
      code: "already_answered",
      disposition: "dead-lettered",
      step: { stepId: "kubelet-config", attempt: 1 },
    });
    await expect(readFile(written)).rejects.toMatchObject({ code: "ENOENT" });
    expect(await hashTree(root.dir)).toBe(afterReset);
    expect(results().map((r) => r.stepId)).toEqual(["kubelet-config", "reset"]);
    const [dead] = service.emulator.inspect.messages(`node-${nodeId}`, { deadLetter: true });
    expect(dead).toMatchObject({ deadLetterReason: "already_answered", body: files });
    expect(a.events.filter((e) => e.type === "step-started").map((e) => e.type === "step-started" && e.stepId)).toEqual(["kubelet-config", "reset"]);
  });

  it("waits out a service outage at start, then connects", async () => {
    const nodeId = await node();
    service.down = true;
    // Retries and outage waits without wall-clock sleeps: each wait is a 20 ms pause.
    const a = agent({
      sleep: (_ms, signal) =>
        new Promise((r, j) => {
          const t = setTimeout(r, 20);
          signal?.addEventListener("abort", () => {
            clearTimeout(t);
            j(new Error("aborted"));
          });
        }),
    });
    await a.waitFor("error", (e) => e.where === "node-api" && /trying again/.test(e.message));
    expect(a.events.some((e) => e.type === "mailbox-connected")).toBe(false);
    service.down = false;
    expect(await a.waitFor("mailbox-connected")).toMatchObject({ queue: `node-${nodeId}` });
  });

  it("ends with NoMailboxError when the service has no mailbox for the node (failed, offboarded)", async () => {
    const nodeId = await node();
    service.nodes.get(nodeId)!.status = "Offboarded";
    const a = startAgent({ root: root.dir });
    await expect(a.done).rejects.toMatchObject({ code: "no_mailbox", status: "Offboarded" });
  });

  describe("drain mode", () => {
    const drain = { idleMs: 300, recheckMs: 300, timerUnit: "flexnode-agent.timer" };
    /** A host whose `systemctl is-active <timer>` answers as given; records every call. */
    const hostWith = (timerActive: boolean) => {
      const calls: string[] = [];
      return {
        calls,
        host: {
          run: async (program: string, args: readonly string[]) => (
            calls.push([program, ...args].join(" ")),
            args[0] === "is-active" && !timerActive ? { code: 3, stdout: "inactive\n", stderr: "" } : { code: 0, stdout: "active\n", stderr: "" }
          ),
        },
      };
    };

    it("handles what is queued, then ends once the node is Ready and the queue is quiet (the timer starts it again)", async () => {
      const nodeId = await node();
      service.nodes.get(nodeId)!.status = "Ready";
      await service.sendStep(nodeId, { stepId: "queued-before-start" });
      const { host, calls } = hostWith(true);
      const a = startAgent({ root: root.dir, host, drain });
      await a.done;
      expect(a.events.map((e) => e.type).filter((t) => t !== "step-log")).toEqual(["mailbox-connected", "step-started", "step-finished", "drained"]);
      expect(a.events.at(-1)).toEqual({ type: "drained", status: "Ready", timer: "flexnode-agent.timer" });
      expect(calls).toEqual(["systemctl is-active flexnode-agent.timer"]);
      expect(results().map((r) => r.stepId)).toEqual(["queued-before-start"]);
      expect(await new AgentStateStore(root.dir).require()).toMatchObject({ status: "Ready" });
    });

    it("stays while the node is not Ready (a saga is still sending steps), and ends once it is", async () => {
      const nodeId = await node();
      service.nodes.get(nodeId)!.status = "Onboarding";
      const { host } = hostWith(true);
      const a = agent({ host, drain });
      await a.waitFor("mailbox-connected");
      await new Promise((r) => setTimeout(r, 1_200));
      expect(a.events.some((e) => e.type === "drained")).toBe(false);
      await service.sendStep(nodeId, { stepId: "while-onboarding" });
      await a.waitFor("step-finished");
      service.nodes.get(nodeId)!.status = "Ready";
      expect(await a.waitFor("drained")).toMatchObject({ status: "Ready" });
      await a.done;
    });

    it("stays connected, and says why once, when the timer that would start it again is not active", async () => {
      const nodeId = await node();
      service.nodes.get(nodeId)!.status = "Ready";
      const { host, calls } = hostWith(false);
      const a = agent({ host, drain });
      await a.waitFor("error", (e) => e.where === "drain");
      await new Promise((r) => setTimeout(r, 1_000));
      expect(a.events.filter((e) => e.type === "error" && e.where === "drain")).toEqual([
        {
          type: "error",
          where: "drain",
          message: "drain mode, but flexnode-agent.timer is inactive: staying connected (systemctl enable --now flexnode-agent.timer)",
        },
      ]);
      expect(calls.length).toBeGreaterThanOrEqual(2);
      expect(a.events.some((e) => e.type === "drained")).toBe(false);
    });

    it("stops the timer when the node has no mailbox any more, so it is not started for nothing", async () => {
      const nodeId = await node();
      service.nodes.get(nodeId)!.status = "Offboarded";
      const { host, calls } = hostWith(true);
      const a = startAgent({ root: root.dir, host, drain });
      await expect(a.done).rejects.toMatchObject({ code: "no_mailbox", status: "Offboarded" });
      expect(calls).toEqual(["systemctl stop flexnode-agent.timer"]);
    });
  });

  it("stops on abort: closes the receiver and its connections, and a message sent afterwards stays queued", async () => {
    const nodeId = await node();
    const a = agent();
    await a.waitFor("mailbox-connected");
    await a.stop();
    agents.splice(0);
    expect(a.events.at(-1)).toEqual({ type: "stopped" });
    await service.sendStep(nodeId, { stepId: "later" });
    expect(service.emulator.inspect.queue(`node-${nodeId}`)).toMatchObject({ active: 1, locked: 0 });
    expect(service.emulator.log.deliveries(`node-${nodeId}`)).toEqual([]);
  });
});
