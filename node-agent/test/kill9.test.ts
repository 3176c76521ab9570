/**
 * kill -9 at a seeded random point inside each step of the mutable plan: a child agent runs the plan, is killed while
 * step i runs, is started again and must converge to exactly the tree an uninterrupted run leaves; reset must then
 * bring back the original root. The steps are observable honestly: the mirror streams at a bounded rate, every host
 * command and the secret's round trip take a few milliseconds, and the kubelet takes a moment to write its
 * certificate. FLEXNODE_KILL9_SEED=<n> replays a run.
 */
import { rm } from "node:fs/promises";

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RecordingHostCommands } from "../src/host-commands.js";
import { resetAll } from "../src/reset.js";
import { seededRandom } from "../../test/support/index.js";
import { startArtifactServer, type ArtifactServer } from "./support-host/artifact-server.js";
import { bundlePlanChild, startChild } from "./support-host/child.js";
import { fakeHostScript, startFakeKubelet } from "./support-host/fake-host.js";
import { buildPayloads, publish } from "./support-host/payloads.js";
import { BOOTSTRAP_KUBECONFIG, BOOTSTRAP_REF, depsFor, NODE_ID, servicePublicKey, sign, testPlan } from "./support-host/plan.js";
import type { ChildConfig } from "./support-host/plan-child.js";
import { createSandbox } from "./support-host/sandbox.js";
import { treeDiff, treeListing } from "./support-host/tree-hash.js";

const seed = Number(process.env.FLEXNODE_KILL9_SEED ?? Math.floor(Math.random() * 2 ** 31));

let server: ArtifactServer;
let root: string;
let bundle: string;
let config: ChildConfig;
let stopKubelet: () => void;
beforeAll(async () => {
  server = await startArtifactServer({ bytesPerSecond: 1024 * 1024 });
  const catalog = publish(server, await buildPayloads());
  bundle = await bundlePlanChild();
  root = await createSandbox();
  stopKubelet = startFakeKubelet(root, 100);
  const envelopes = testPlan({ immutable: false, catalog, apiServer: server.origin }).map((s) => sign(s));
  config = { root, nodeId: NODE_ID, servicePublicKey, envelopes, ca: server.ca, secret: { ref: BOOTSTRAP_REF, value: BOOTSTRAP_KUBECONFIG }, latencyMs: 10 };
});
afterAll(async () => {
  stopKubelet();
  await server.close();
  await rm(root, { recursive: true, force: true });
});

async function runToEnd(what: string): Promise<void> {
  const child = await startChild(bundle, config);
  const exit = await child.exited;
  expect({ what, seed, code: exit.code, stderr: exit.stderr, tail: child.lines.slice(-2) }).toMatchObject({ code: 0, stderr: "" });
}

/** Resets, and checks the root is the original one, the kubelet's own files included (its unit's state directory). */
async function reset(original: readonly string[], step?: number): Promise<void> {
  const report = await resetAll(depsFor(root, new RecordingHostCommands(fakeHostScript(root))));
  expect({ seed, step, failed: report.failed, left: report.left.map((l) => l.path) }).toEqual({ seed, step, failed: [], left: [] });
  expect({ seed, step, diff: treeDiff(original, await treeListing(root)) }).toEqual({ seed, step, diff: [] });
}

describe("kill -9 inside every step", () => {
  it("converges after a restart to the uninterrupted result, and reset restores the original root", async () => {
    const original = await treeListing(root);

    // The reference: one uninterrupted run, timing each step to aim the kills.
    const timed = await startChild(bundle, config);
    const began = new Map<number, number>();
    const durations: number[] = [];
    timed.process.stdout!.on("data", () => {
      for (const line of timed.lines) {
        const m = /^(begin|end) (\d+)/.exec(line);
        if (!m) continue;
        const i = Number(m[2]);
        if (m[1] === "begin" && !began.has(i)) began.set(i, performance.now());
        if (m[1] === "end" && durations[i] === undefined) durations[i] = performance.now() - began.get(i)!;
      }
    });
    expect((await timed.exited).code).toBe(0);
    const reference = await treeListing(root);
    await reset(original);

    const pick = seededRandom(seed);
    const landed: string[] = [];
    for (let i = 0; i < config.envelopes.length; i++) {
      const child = await startChild(bundle, { ...config, linger: true });
      expect({ seed, step: i, began: await child.waitFor(new RegExp(`^begin ${i}$`)) }).toEqual({ seed, step: i, began: `begin ${i}` });
      const delay = pick() * (durations[i] ?? 0);
      await new Promise((r) => setTimeout(r, delay));
      const inside = !child.lines.includes(`end ${i} succeeded`);
      child.process.kill("SIGKILL");
      const exit = await child.exited;
      expect({ seed, step: i, signal: exit.signal }).toEqual({ seed, step: i, signal: "SIGKILL" });
      landed.push(`${i}:${inside ? "inside" : "after"}@${delay.toFixed(0)}ms`);

      await runToEnd(`restart after kill in step ${i}`);
      expect({ seed, step: i, diff: treeDiff(reference, await treeListing(root)) }).toEqual({ seed, step: i, diff: [] });
      await reset(original, i);
    }
    console.warn(`kill -9 seed ${seed}; step durations ${durations.map((d) => d.toFixed(0)).join("/")} ms; kills ${landed.join(" ")}`);
  }, 120_000);
});
