/**
 * A node whose clock disagrees with the service's, through the mailbox (Service Bus emulator, unmodified SDK): the
 * preflight step measures the skew against its envelope's issuedAt, an envelope refused by the node's clock alone is
 * answered with a signed `clock_skew` failure (never run, the same answer on redelivery), and `flexnode-agent
 * preflight` without an envelope says it did not measure the clock. The service's clock is moved rather than the
 * node's: the node API checks the node's request times against the service clock too.
 */
import { randomBytes } from "node:crypto";
import { PassThrough } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { importPublicKey } from "../../contract/keys.js";
import { buildStepEnvelope, type StepEnvelope, type StepEnvelopeInput } from "../../contract/step-envelope.js";
import { verifyStepResult, type StepResult } from "../../contract/step-result.js";
import { main } from "../src/cli.js";
import { RecordingHostCommands } from "../src/host-commands.js";
import { realHostSide } from "../src/host-side.js";
import { loadIdentity } from "../src/identity.js";
import { RESULTS_QUEUE, startNodeService, type NodeService } from "./support-service/node-service.js";
import { enrolledNode, startAgent, type RunningAgent } from "./support-service/running-agent.js";
import { HOSTS, scratchRoot, type ScratchRoot } from "./support-service/scratch-root.js";
import { runsOnDisk } from "./support-service/test-host-side.js";

let service: NodeService | undefined;
let root: ScratchRoot | undefined;
const agents: RunningAgent[] = [];

afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.stop()));
  await service?.close();
  await root?.remove();
  service = undefined;
  root = undefined;
});

async function connectedNode(hostSide?: typeof realHostSide): Promise<{ nodeId: string; agent: RunningAgent; service: NodeService; root: ScratchRoot }> {
  const s = (service = await startNodeService());
  const enrolled = await enrolledNode(s);
  root = enrolled.root;
  const agent = startAgent({ root: root.dir, ...(hostSide ? { hostSide } : {}) });
  agents.push(agent);
  await agent.waitFor("mailbox-connected");
  return { nodeId: enrolled.nodeId, agent, service: s, root };
}

/** A service-signed envelope whose issuedAt is `issuedOffsetMs` from now (the service's clock that far off the node's). */
function envelopeFrom(s: NodeService, nodeId: string, issuedOffsetMs: number, validForMs: number, step: Partial<StepEnvelopeInput> = {}): StepEnvelope {
  const issuedAt = new Date(Date.now() + issuedOffsetMs);
  return buildStepEnvelope(
    {
      nodeId,
      sagaId: `${nodeId}@1`,
      stepId: "preflight",
      attempt: 1,
      kind: "preflight",
      params: { checks: ["clock"] },
      issuedAt,
      expiresAt: new Date(issuedAt.getTime() + validForMs),
      ...step,
    },
    { privateKey: s.serviceKey },
  );
}

const sentResults = (s: NodeService): unknown[] => s.emulator.inspect.messages(RESULTS_QUEUE).map((m) => m.body);

async function verified(r: ScratchRoot, nodeId: string, raw: unknown): Promise<StepResult> {
  const identity = (await loadIdentity(r.dir))!;
  return verifyStepResult(raw, { nodeId, nodePublicKey: importPublicKey(identity.publicKey) });
}

describe("the preflight step measures this node's clock against the service's", () => {
  it("warns of a node 3 minutes ahead of the service, naming the offset, without failing: that may be queueing time", async () => {
    const { nodeId, agent, service: s, root: r } = await connectedNode(realHostSide);
    // Valid for 10 minutes, so the agent's own envelope check lets it through: only the preflight can notice.
    await s.sendRaw(nodeId, envelopeFrom(s, nodeId, -180_000, 600_000));
    expect(await agent.waitFor("step-finished")).toMatchObject({ stepId: "preflight", outcome: "succeeded" });
    const result = await verified(r, nodeId, sentResults(s)[0]);
    expect(result).toMatchObject({
      outcome: "succeeded",
      output: { checks: expect.arrayContaining([expect.objectContaining({ name: "clock", status: "warn" })]) },
    });
    expect(JSON.stringify(result)).toMatch(/clock is up to 18\d\.\d s ahead of the service's, or this step waited .*step envelope preflight's issuedAt is /);
  });

  it("fails preflight on a node 45 s behind (inside the agent's envelope skew, outside the preflight tolerance)", async () => {
    const { nodeId, agent, service: s, root: r } = await connectedNode(realHostSide);
    await s.sendRaw(nodeId, envelopeFrom(s, nodeId, 45_000, 600_000));
    expect(await agent.waitFor("step-finished")).toMatchObject({ outcome: "failed", errorCode: "preflight_failed" });
    const result = await verified(r, nodeId, sentResults(s)[0]);
    expect(result.outcome === "failed" && result.error.message).toMatch(/^preflight failed: clock: clock is at least 4\d\.\d s behind the service's/);
  });

  it("passes a node within the tolerance", async () => {
    const { nodeId, agent, service: s, root: r } = await connectedNode(realHostSide);
    await s.sendRaw(nodeId, envelopeFrom(s, nodeId, -10_000, 600_000));
    expect(await agent.waitFor("step-finished")).toMatchObject({ outcome: "succeeded" });
    const result = await verified(r, nodeId, sentResults(s)[0]);
    expect(result).toMatchObject({ outcome: "succeeded", output: { checks: [{ name: "clock", status: "pass" }] } });
  });
});

describe("an envelope refused only by this node's clock is answered with clock_skew, never run", () => {
  it("issued 3 minutes in the node's future: a signed, retryable clock_skew naming the offset, and the same answer on redelivery", async () => {
    const { nodeId, agent, service: s, root: r } = await connectedNode();
    const envelope = envelopeFrom(s, nodeId, 180_000, 600_000, { stepId: "sysctl", kind: "sysctl", params: { settings: { "net.ipv4.ip_forward": "1" } } });
    await s.sendRaw(nodeId, envelope);
    expect(await agent.waitFor("envelope-refused")).toMatchObject({
      code: "clock_skew",
      disposition: "failed-result",
      step: { sagaId: envelope.sagaId, stepId: "sysctl", attempt: 1 },
    });
    const result = await verified(r, nodeId, sentResults(s)[0]);
    expect(result).toMatchObject({ outcome: "failed", error: { code: "clock_skew", retryable: true } });
    expect(result.outcome === "failed" && result.error.message).toMatch(/^this node's clock is at least 1[78]\d s behind the service's: step envelope sysctl/);

    await s.sendRaw(nodeId, envelope);
    await agent.waitFor("result-resent");
    expect(sentResults(s)).toEqual([sentResults(s)[0], sentResults(s)[0]]);
    expect(agent.events.some((e) => e.type === "step-started")).toBe(false);
    expect(await runsOnDisk(r.dir)).toEqual({});
    expect(s.emulator.inspect.queue(`node-${nodeId}`)).toMatchObject({ active: 0, deadLettered: 0 });
  });

  it("expired by the node's clock only (a 60 s step, the node 3 minutes ahead): a signed clock_skew instead of a silent dead letter", async () => {
    const { nodeId, agent, service: s, root: r } = await connectedNode();
    const envelope = envelopeFrom(s, nodeId, -180_000, 60_000, { stepId: "kernel-modules", kind: "kernelModules", params: { modules: ["overlay"] } });
    await s.sendRaw(nodeId, envelope);
    expect(await agent.waitFor("envelope-refused")).toMatchObject({ code: "clock_skew", disposition: "failed-result", step: { stepId: "kernel-modules" } });
    const result = await verified(r, nodeId, sentResults(s)[0]);
    expect(result).toMatchObject({ outcome: "failed", error: { code: "clock_skew", retryable: true } });
    expect(result.outcome === "failed" && result.error.message).toMatch(
      /^step envelope kernel-modules \(attempt 1\) expired at .*, 18\d s after it was issued: if the service still waits for this step, this node's clock is at least 1[12]\d s ahead/,
    );
    await s.sendRaw(nodeId, envelope);
    await agent.waitFor("result-resent");
    expect(sentResults(s)).toHaveLength(2);
    expect(sentResults(s)[1]).toEqual(sentResults(s)[0]);
    expect(agent.events.some((e) => e.type === "step-started")).toBe(false);
    expect(await runsOnDisk(r.dir)).toEqual({});
  });

  it("an attempt the node ran, redelivered once expired, gets its remembered result: no clock_skew, no second run", async () => {
    const { nodeId, agent, service: s, root: r } = await connectedNode();
    // Valid for 5 more seconds by the agent's 60 s skew, then expired within the window its replay records cover.
    const envelope = envelopeFrom(s, nodeId, -300_000, 300_000 - 55_000, { stepId: "ran", kind: "writeFiles", params: {} });
    await s.sendRaw(nodeId, envelope);
    expect(await agent.waitFor("step-finished")).toMatchObject({ stepId: "ran", outcome: "succeeded" });
    const expiredAfter = Date.parse(envelope.expiresAt) + 61_000 - Date.now();
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, expiredAfter)));
    await s.sendRaw(nodeId, envelope);
    expect(await agent.waitFor("result-resent")).toMatchObject({ stepId: "ran", outcome: "succeeded" });
    expect(sentResults(s)).toHaveLength(2);
    expect(sentResults(s)[1]).toEqual(sentResults(s)[0]);
    expect(agent.events.some((e) => e.type === "envelope-refused")).toBe(false);
    expect(await runsOnDisk(r.dir)).toEqual({ "ran.1": 1 });
  });

  it("expired longer ago than the replay records last: still dead-lettered, never answered", async () => {
    const { nodeId, agent, service: s, root: r } = await connectedNode();
    const envelope = envelopeFrom(s, nodeId, -600_000, 60_000, { stepId: "old", kind: "writeFiles", params: {} });
    await s.sendRaw(nodeId, envelope);
    expect(await agent.waitFor("envelope-refused")).toMatchObject({ code: "envelope_expired", disposition: "dead-lettered" });
    expect(sentResults(s)).toEqual([]);
    expect(await runsOnDisk(r.dir)).toEqual({});
  });
});

describe("flexnode-agent preflight (no envelope)", () => {
  it("reports the clock as not measured rather than passed", async () => {
    root = await scratchRoot({ ...HOSTS.ubuntu, "/etc/machine-id": `${randomBytes(16).toString("hex")}\n` });
    const stdout = new PassThrough();
    const chunks: Buffer[] = [];
    stdout.on("data", (c: Buffer) => chunks.push(c));
    await main(["--root", root.dir, "--output", "json", "preflight"], { stdout, stderr: new PassThrough(), env: {}, host: new RecordingHostCommands() });
    const out = JSON.parse(Buffer.concat(chunks).toString("utf8").trim().split("\n").at(-1)!) as {
      preflight: { checks: { name: string; status: string; detail: string }[] };
    };
    expect(out.preflight.checks.find((c) => c.name === "clock")).toMatchObject({
      status: "skipped",
      detail: expect.stringMatching(/^not measured: no time the service vouches for here/),
    });
  });
});
