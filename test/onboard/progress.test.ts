/** The saga's custom status as the admin API shows it: phase, node step attempts with outcome and duration. */
import { afterEach, describe, expect, it } from "vitest";
import { admin } from "../function-app/index.js";
import { startWorld, type World } from "./world.js";

let world: World;
afterEach(async () => {
  await world.close();
});

interface NodeWithTimeline {
  status: string;
  progress: { phase: string; runtimeStatus: string; lastError?: string };
  timeline: { kind: string; what: string; attempt?: number; outcome?: string; durationMs?: number }[];
}

describe("a node's progress and timeline from the real saga", () => {
  it("records every node step attempt with its outcome and duration, deterministically under replay", async () => {
    world = await startWorld();
    const { nodeId } = await world.enrol({ script: (e) => (e.stepId === "sysctl" && e.attempt === 1 ? "failRetryable" : "succeed") });
    const done = await world.settle(nodeId);
    expect(done.output).toEqual({ status: "Ready" });

    const res = await world.app.call("GET", `/api/manage/nodes/${nodeId}`, { headers: admin });
    const body = res.json as NodeWithTimeline;
    expect(body.status).toBe("Ready");
    expect(body.progress).toMatchObject({ phase: "done", runtimeStatus: "Completed", lastError: expect.stringMatching(/^sysctl attempt 1: /) });
    const steps = body.timeline.filter((e) => e.kind === "step");
    expect(steps.filter((s) => s.what === "sysctl").map((s) => [s.attempt, s.outcome])).toEqual([
      [1, "failed"],
      [2, "succeeded"],
    ]);
    expect(steps.every((s) => Number.isInteger(s.durationMs) && s.durationMs! >= 0)).toBe(true);
    expect(steps.at(-1)?.what).toBe("kubelet-client-certificate");
    const events = body.timeline.filter((e) => e.kind === "event").map((e) => e.what);
    expect(events[0]).toBe("node.enrol");
    expect(events).toContain("node.ready");
  });
});
