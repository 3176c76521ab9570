/**
 * How the saga waits for what Azure or the node can tell it (the principal in ARM's PUT answer, the node name in the
 * kubelet step's result) and how it polls where nothing can (an identity ARM fills in late, a Node not Ready yet):
 * growing waits from TEST_TIMING's 1 s up to 4 s, at most 5 questions, then the phase's own error.
 */
import type { HttpClient } from "@azure/core-rest-pipeline";
import { afterEach, describe, expect, it } from "vitest";
import { EventType } from "../durable/index.js";
import { startWorld, type World } from "./world.js";

let world: World | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});

const MACHINE = /\/providers\/microsoft\.hybridcompute\/machines\/[^/]+$/i;

/**
 * ARM's machine answers while a new system-assigned identity has no principal yet: the first `answers` PUT or GET
 * bodies of a machine carry `identity` without `principalId`; later ones are the emulator's own, with it. ARM's PUT
 * answer normally has it (azure-rest-api-specs stable/2025-01-13/examples/machine/Machines_CreateOrUpdate.json @
 * 3c97ef61, 200 body), as the emulator's does; AKSFlexNode still polls for it (reference azure-resource-manager.md §1.3).
 */
function principalLate(answers: number) {
  let left = answers;
  return (inner: HttpClient): HttpClient => ({
    async sendRequest(request) {
      const response = await inner.sendRequest(request);
      if (!MACHINE.test(new URL(request.url).pathname) || request.method === "DELETE" || response.status >= 300 || !response.bodyAsText || left <= 0)
        return response;
      left--;
      const body = JSON.parse(response.bodyAsText) as { identity?: { principalId?: string } };
      delete body.identity?.principalId;
      return { ...response, bodyAsText: JSON.stringify(body) };
    },
  });
}

/** Emulated ms between each machine GET and the request before it (the PUT for the first). */
function machineLookGaps(w: World): number[] {
  const looks = w.arm.requests.entries.filter((e) => e.route === "machines.put" || e.route === "machines.get");
  return looks.slice(1).map((e, i) => e.at - looks[i]!.at);
}

/** The saga's short timers (polls; step timeouts and compensation waits are ≥ 30 s), as waits in ms, in order. */
function pollWaits(w: World, instanceId: string): number[] {
  return w.app.simulator
    .history(instanceId)
    .filter((e) => e.EventType === EventType.TimerCreated)
    .map((e) => Date.parse(String(e.FireAt)) - Date.parse(String(e.Timestamp)))
    .filter((ms) => ms < 30_000);
}

const nodeReads = (w: World, nodeId: string) => w.kube.requests.filter({ method: "GET", route: "nodes.get" }).filter((e) => e.path.endsWith(`/${nodeId}`));

describe("the Arc identity's principal", () => {
  it("comes from the machine PUT's answer: the saga never reads the machine", async () => {
    world = await startWorld();
    const { nodeId } = await world.enrol();
    expect((await world.settle(nodeId)).output).toEqual({ status: "Ready" });
    expect(world.arm.requests.filter({ route: "machines.get" })).toEqual([]);
    const [machine] = world.arm.inspect.machines();
    expect(world.arm.inspect.roleAssignments().map((g) => g.principalId)).toEqual([machine!.principalId, machine!.principalId]);
  });

  it("is read again after 1 s, 2 s, 4 s when ARM's answers have none yet, and used once it comes", async () => {
    world = await startWorld({ armTransport: principalLate(3) });
    const { nodeId } = await world.enrol();
    expect((await world.settle(nodeId)).output).toEqual({ status: "Ready" });
    expect(machineLookGaps(world)).toEqual([1_000, 2_000, 4_000]);
    const [machine] = world.arm.inspect.machines();
    expect(world.arm.inspect.roleAssignments().every((g) => g.principalId === machine!.principalId)).toBe(true);
  });

  it("is waited for a bounded number of times (waits capped at 4 s), then the saga fails with ArcIdentityMissing and removes the machine", async () => {
    world = await startWorld({ armTransport: principalLate(Number.POSITIVE_INFINITY) });
    const { nodeId } = await world.enrol();
    const done = await world.settle(nodeId);
    expect(done.output).toMatchObject({ status: "Failed", error: { code: "ArcIdentityMissing" }, remaining: [] });
    // The PUT's answer is the first of 5 looks: 4 reads, the last waits at the cap.
    expect(machineLookGaps(world)).toEqual([1_000, 2_000, 4_000, 4_000]);
    expect(world.arm.inspect.machines()).toEqual([]);
    expect(world.arm.inspect.roleAssignments()).toEqual([]);
  });
});

describe("the Node's readiness", () => {
  it("is asked of the Kubernetes API once, at once, when the kubelet step reports its certificate names this node", async () => {
    world = await startWorld();
    const { nodeId } = await world.enrol();
    expect((await world.settle(nodeId)).output).toEqual({ status: "Ready" });
    expect(nodeReads(world, nodeId)).toHaveLength(1);
    expect(pollWaits(world, nodeId)).toEqual([]);
  });

  it("is still asked, once, of an agent that does not report the kubelet's node (an agent from before the field)", async () => {
    world = await startWorld();
    const { nodeId } = await world.enrol({ kubeletNode: null });
    expect((await world.settle(nodeId)).output).toEqual({ status: "Ready" });
    expect(nodeReads(world, nodeId)).toHaveLength(1);
  });

  it("is not waited for when the kubelet's certificate names another node: the saga fails at once with KubeletNameMismatch", async () => {
    world = await startWorld();
    const { nodeId } = await world.enrol({ kubeletNode: "some-other-host" });
    const done = await world.settle(nodeId);
    expect(done.output).toMatchObject({
      status: "Failed",
      error: { code: "KubeletNameMismatch", message: expect.stringContaining("some-other-host") },
      remaining: [],
    });
    expect(nodeReads(world, nodeId)).toEqual([]);
    expect(pollWaits(world, nodeId)).toEqual([]);
  });

  it("is polled with growing waits (1 s, 2 s, 4 s, capped at 4 s) while the Node never turns Ready, then fails with NodeNotReady", async () => {
    world = await startWorld();
    // The kubelet step reports the certificate, but its Node never turns up.
    const { nodeId } = await world.enrol({ script: (e) => (e.stepId === "kubelet-client-certificate" ? "succeedWithoutEffect" : "succeed") });
    const done = await world.settle(nodeId);
    expect(done.output).toMatchObject({ status: "Failed", error: { code: "NodeNotReady" }, remaining: [] });
    expect(nodeReads(world, nodeId)).toHaveLength(5);
    expect(pollWaits(world, nodeId)).toEqual([1_000, 2_000, 4_000, 4_000]);
  });
});
