import { rm } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RecordingHostCommands } from "../../src/host-commands.js";
import { resetAll } from "../../src/reset.js";
import { startArtifactServer, type ArtifactServer } from "../support-host/artifact-server.js";
import { fakeHostScript, startFakeKubelet } from "../support-host/fake-host.js";
import { buildPayloads, publish } from "../support-host/payloads.js";
import { depsFor, runPlan, sign, testPlan } from "../support-host/plan.js";
import { createSandbox } from "../support-host/sandbox.js";
import { treeDiff, treeListing } from "../support-host/tree-hash.js";
import type { ArtifactCatalog } from "../../../orchestrations/node-plan/node-plan.js";

let server: ArtifactServer;
let catalog: ArtifactCatalog;
const roots: string[] = [];

beforeAll(async () => {
  server = await startArtifactServer();
  catalog = publish(server, await buildPayloads());
});
afterAll(async () => {
  await server.close();
  for (const r of roots) await rm(r, { recursive: true, force: true });
});

describe.each([
  { immutable: false, arch: "amd64" as const },
  { immutable: true, arch: "arm64" as const },
])("a whole plan (immutable: $immutable, $arch)", ({ immutable, arch }) => {
  it("completes against the real mirror, converges when rerun, and reset restores the root byte for byte", async () => {
    const root = await createSandbox({ immutable });
    roots.push(root);
    const before = await treeListing(root);
    const host = new RecordingHostCommands(fakeHostScript(root));
    const log: string[] = [];
    const deps = depsFor(root, host, { ca: server.ca, log });
    const envelopes = testPlan({ immutable, arch, catalog, apiServer: server.origin }).map((s) => sign(s));
    const stopKubelet = startFakeKubelet(root);
    try {
      const first = await runPlan(envelopes, deps);
      expect(first.results.filter((r) => r.result.outcome === "failed")).toEqual([]);
      expect(first.ok).toBe(true);
      const afterPlan = await treeListing(root);
      expect(treeDiff(before, afterPlan).length).toBeGreaterThan(0);

      const callsBefore = host.calls.length;
      const second = await runPlan(envelopes, deps);
      expect(second.ok).toBe(true);
      expect(await treeListing(root)).toEqual(afterPlan);
      // Converged: the rerun only asks (is-enabled/is-active), reloads and refreshes; it changes nothing.
      expect(
        host
          .lines()
          .slice(callsBefore)
          .filter((l) => !/^systemctl (is-enabled|is-active|daemon-reload)|^systemd-sysext refresh/.test(l)),
      ).toEqual([]);
      const finalDigest = first.results.at(-1)!.result.manifestDigest;
      expect(new Set(second.results.map((r) => r.result.manifestDigest))).toEqual(new Set([finalDigest]));

      const report = await resetAll(deps);
      expect(report.failed).toEqual([]);
      // Byte for byte, what the kubelet wrote itself included: the plan's kubelet unit declares StateDirectory=kubelet,
      // so /var/lib/kubelet was recorded as the unit's and goes whole once the kubelet is stopped.
      expect(report.left).toEqual([]);
      expect(treeDiff(before, await treeListing(root))).toEqual([]);
      const again = await resetAll(deps);
      expect(again.undone).toEqual([]);
      expect(treeDiff(before, await treeListing(root))).toEqual([]);
      expect(log.join("\n")).not.toContain("0123456789abcdef");
    } finally {
      stopKubelet();
    }
  });
});
