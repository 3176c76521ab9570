/**
 * The real agent (enrolAgent + runAgent) in place of the scripted AgentResponder, against the whole service wired to
 * its emulators (test/onboard/world.ts): enrolment over HTTP, the onboarding saga sending signed envelopes to the
 * node's queue, the results trigger verifying the agent's signed results, the bootstrap kubeconfig over the signed
 * node API. The host side records steps on disk and joins the Kubernetes emulator (the executors have their own tests).
 */
import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { enrolAgent } from "../src/agent.js";
import { AgentStateStore } from "../src/agent-state.js";
import { REJECTED_RESULTS_QUEUE } from "../../orchestrations/clients/mailbox/mailbox.js";
import { admin } from "../../test/function-app/index.js";
import { startWorld, type World } from "../../test/onboard/world.js";
import { startHttpFront, type HttpFront } from "./support-service/http-front.js";
import { kubeletHostSide } from "./support-service/kubelet-host-side.js";
import { startAgent, type RunningAgent } from "./support-service/running-agent.js";
import { HOSTS, scratchRoot, type ScratchRoot } from "./support-service/scratch-root.js";
import { runsOnDisk } from "./support-service/test-host-side.js";

let world: World;
let front: HttpFront;
let root: ScratchRoot;
let agent: RunningAgent | undefined;

beforeEach(async () => {
  world = await startWorld();
  front = await startHttpFront(world.app);
  root = await scratchRoot({ ...HOSTS.flatcar, "/etc/machine-id": `${randomBytes(16).toString("hex")}\n` });
});
afterEach(async () => {
  await agent?.stop();
  await front.close();
  await world.close();
  await root.remove();
});

describe("the real agent in the service's world", () => {
  it("takes an immutable node from enrolment to Ready", async () => {
    const token = await world.app.createToken("edge");
    const { nodeId, httpStatus } = await enrolAgent({ root: root.dir, url: `${front.url}/api/enrol#${token}` });
    expect(httpStatus).toBe(201);
    const hostSide = kubeletHostSide(world.kube, () => nodeId);
    agent = startAgent({ root: root.dir, hostSide });
    await agent.waitFor("mailbox-connected");

    const done = await world.settle(nodeId);
    expect(done).toMatchObject({ runtimeStatus: "Completed", output: { status: "Ready" } });
    expect(hostSide.joined).toBe(true);
    expect(world.kube.inspect().nodes.map((n) => n.name)).toEqual([nodeId]);

    // Every plan step ran exactly once, each answered by a result the service accepted (nothing quarantined).
    const steps = [
      "preflight",
      "kernel-modules",
      "sysctl",
      "container-runtime",
      "kubernetes-binaries",
      "cni-plugins",
      "kubelet-config",
      "bootstrap-kubeconfig",
      "start-kubelet",
      "kubelet-client-certificate",
    ];
    expect(Object.keys(await runsOnDisk(root.dir)).sort()).toEqual(steps.map((s) => `${s}.1`).sort());
    expect(Object.values(await runsOnDisk(root.dir)).every((n) => n === 1)).toBe(true);
    expect(world.sb.inspect.queue(REJECTED_RESULTS_QUEUE)?.active).toBe(0);
    const state = await new AgentStateStore(root.dir).require();
    expect(state.results.map((r) => r.stepId)).toEqual(steps);
    expect(state.results.every((r) => r.result.outcome === "succeeded")).toBe(true);
  });

  it("reports the machine's facts when they change after enrolment, and only then", async () => {
    const token = await world.app.createToken("edge");
    const { nodeId } = await enrolAgent({ root: root.dir, url: `${front.url}/api/enrol#${token}` });
    const factsPuts = () => front.seen.filter((r) => r.method === "PUT" && r.url === "/api/node/facts");
    const recorded = async () => {
      const res = await world.app.call("GET", `/api/manage/nodes/${nodeId}`, { headers: admin });
      expect(res.status).toBe(200);
      return (res.json as { facts: { osRelease: { versionId?: string }; kernel: string; machineId: string } }).facts;
    };

    // The facts enrolment carried are the service's already: a start sends nothing.
    agent = startAgent({ root: root.dir });
    await agent.waitFor("mailbox-connected");
    await agent.stop();
    expect(factsPuts()).toEqual([]);

    // Flatcar updated itself (a new /usr image, a new kernel) and rebooted.
    await writeFile(join(root.dir, "etc/os-release"), 'ID=flatcar\nVERSION_ID=4152.2.0\nPRETTY_NAME="Flatcar Container Linux by Kinvolk 4152.2.0"\n');
    await writeFile(join(root.dir, "proc/sys/kernel/osrelease"), "6.6.74-flatcar\n");
    agent = startAgent({ root: root.dir });
    expect(await agent.waitFor("facts-reported")).toMatchObject({ os: "Flatcar Container Linux by Kinvolk 4152.2.0", kernel: "6.6.74-flatcar" });
    await agent.stop();
    expect(factsPuts()).toHaveLength(1);
    expect(await recorded()).toMatchObject({ osRelease: { versionId: "4152.2.0" }, kernel: "6.6.74-flatcar" });

    // Reported once: the next start has nothing new to say.
    agent = startAgent({ root: root.dir });
    await agent.waitFor("mailbox-connected");
    await agent.stop();
    expect(factsPuts()).toHaveLength(1);

    // A disk moved to another machine keeps this state but not this identity: refused, recorded facts unchanged,
    // and tried again on the next start (the digest stays the accepted one's).
    const before = await recorded();
    const accepted = (await new AgentStateStore(root.dir).require()).factsDigest;
    expect(accepted).toMatch(/^[0-9a-f]{64}$/);
    await writeFile(join(root.dir, "etc/machine-id"), `${randomBytes(16).toString("hex")}\n`);
    agent = startAgent({ root: root.dir });
    expect(await agent.waitFor("error", (e) => e.where === "facts")).toMatchObject({ message: expect.stringMatching(/409|different machine/) });
    await agent.stop();
    expect(await recorded()).toEqual(before);
    expect((await new AgentStateStore(root.dir).require()).factsDigest).toBe(accepted);
    expect(factsPuts()).toHaveLength(2);
    agent = startAgent({ root: root.dir });
    await agent.waitFor("error", (e) => e.where === "facts");
    await agent.stop();
    expect(factsPuts()).toHaveLength(3);
  });
});
