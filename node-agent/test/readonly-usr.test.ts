/**
 * An immutable host: the plan and reset run in a child process whose mount namespace has the sandbox's /usr and the
 * real /usr read-only, as on Flatcar or Fedora CoreOS. Needs root and unshare(1); otherwise skipped with the reason.
 */
import { existsSync } from "node:fs";
import { rm, symlink } from "node:fs/promises";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RecordingHostCommands } from "../src/host-commands.js";
import { runStep } from "../src/run-step.js";
import { startArtifactServer, type ArtifactServer } from "./support-host/artifact-server.js";
import { bundlePlanChild, startChild } from "./support-host/child.js";
import { fakeHostScript, startFakeKubelet } from "./support-host/fake-host.js";
import { buildPayloads, publish } from "./support-host/payloads.js";
import { BOOTSTRAP_KUBECONFIG, BOOTSTRAP_REF, depsFor, NODE_ID, servicePublicKey, sign, testPlan } from "./support-host/plan.js";
import { createSandbox } from "./support-host/sandbox.js";
import { treeDiff, treeListing } from "./support-host/tree-hash.js";

const unshare = ["/usr/bin/unshare", "/bin/unshare"].find((p) => existsSync(p));
const isRoot = process.geteuid?.() === 0;
const skipReason = !isRoot ? `not root (euid ${String(process.geteuid?.())})` : !unshare ? "unshare(1) is missing" : undefined;
if (skipReason) console.warn(`skipping the read-only /usr plan test: ${skipReason}`);

let server: ArtifactServer;
const roots: string[] = [];
beforeAll(async () => {
  server = await startArtifactServer();
});
afterAll(async () => {
  await server.close();
  for (const r of roots) await rm(r, { recursive: true, force: true });
});

describe("a host with a read-only /usr", () => {
  it.skipIf(skipReason !== undefined)(
    "runs the whole immutable plan and reset in a namespace where /usr is read-only, and the root comes back byte for byte",
    async () => {
      const catalog = publish(server, await buildPayloads(0.5));
      const bundle = await bundlePlanChild();
      const root = await createSandbox({ immutable: true });
      roots.push(root);
      const original = await treeListing(root);
      const envelopes = testPlan({ immutable: true, arch: "arm64", catalog, apiServer: server.origin }).map((s) => sign(s));
      const stopKubelet = startFakeKubelet(root);
      try {
        const child = await startChild(
          bundle,
          {
            root,
            nodeId: NODE_ID,
            servicePublicKey,
            envelopes,
            ca: server.ca,
            secret: { ref: BOOTSTRAP_REF, value: BOOTSTRAP_KUBECONFIG },
            latencyMs: 0,
            reset: true,
            probeUsr: true,
          },
          (argv) => [
            unshare!,
            "-m",
            "sh",
            "-c",
            'mount --bind "$1/usr" "$1/usr" && mount -o remount,bind,ro "$1/usr" && mount --bind /usr /usr && mount -o remount,bind,ro /usr && shift && exec "$@"',
            "sh",
            root,
            ...argv,
          ],
        );
        const exit = await child.exited;
        expect({ exit: exit.code, stderr: exit.stderr, last: child.lines.slice(-3) }).toMatchObject({ exit: 0, stderr: "" });
        // The mounts were in force: neither the sandbox's /usr nor the real one could be written.
        expect(child.lines[0]).toBe("usr-probe EROFS EROFS");
        expect(child.lines.filter((l) => l.startsWith("end ")).every((l) => l.endsWith(" succeeded"))).toBe(true);
        expect(child.lines.filter((l) => l.startsWith("end "))).toHaveLength(envelopes.length);
        expect(child.lines).toContain("done");
        // Byte for byte, the kubelet's certificate included: /var/lib/kubelet is the kubelet unit's (StateDirectory=kubelet).
        expect(treeDiff(original, await treeListing(root))).toEqual([]);
      } finally {
        stopKubelet();
      }
    },
  );
});

describe("a params path under /usr", () => {
  it("is refused, directly or through a symlink, and nothing changes", async () => {
    const root = await createSandbox({ immutable: true });
    roots.push(root);
    await symlink("/usr/lib/systemd", path.join(root, "etc/vendor-systemd"));
    const original = await treeListing(root);
    const host = new RecordingHostCommands(fakeHostScript(root));
    const deps = depsFor(root, host);
    const direct = await runStep(
      sign({
        stepId: "k",
        kind: "fetchArtifact",
        params: { artifact: { url: "https://mirror.example/kubelet", sha256: "a".repeat(64) }, destination: "/usr/bin/kubelet", mode: "0755" },
      }),
      deps,
    );
    expect(direct).toMatchObject({ outcome: "failed", error: { code: "invalid_params", message: expect.stringContaining("must not be under /usr") } });
    const viaLink = await runStep(
      sign({ stepId: "w", kind: "writeFiles", params: { files: [{ path: "/etc/vendor-systemd/system/kubelet.service", mode: "0644", content: "x" }] } }),
      deps,
    );
    expect(viaLink).toMatchObject({ outcome: "failed", error: { code: "usr_write_refused", retryable: false } });
    expect(host.calls).toEqual([]);
    expect(treeDiff(original, await treeListing(root))).toEqual([]);
  });
});
