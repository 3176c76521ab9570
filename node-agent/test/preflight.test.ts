import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import * as path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { RecordingHostCommands } from "../src/host-commands.js";
import { runPreflight } from "../src/preflight.js";
import { runStep } from "../src/run-step.js";
import { depsFor, sign } from "./support-host/plan.js";
import type { PreflightOptions } from "../src/ports.js";
import { startArtifactServer, type ArtifactServer } from "./support-host/artifact-server.js";
import { createSandbox } from "./support-host/sandbox.js";

let server: ArtifactServer;
const roots: string[] = [];
beforeAll(async () => {
  server = await startArtifactServer();
});
afterAll(() => server.close());
afterEach(async () => {
  for (const r of roots.splice(0)) await rm(r, { recursive: true, force: true });
});

async function options(o: Partial<PreflightOptions> = {}): Promise<PreflightOptions> {
  const root = await createSandbox();
  roots.push(root);
  return { root, host: new RecordingHostCommands(), now: () => new Date(), ...o };
}
const only = async (check: string, o: Partial<PreflightOptions> = {}, prepare?: (root: string) => Promise<void>) => {
  const opts = await options({ checks: [check], ...o });
  await prepare?.(opts.root);
  const report = await runPreflight(opts);
  return { ...report.checks[0]!, ok: report.ok };
};

describe("preflight", () => {
  it("passes a healthy host, runs no host program and writes nothing", async () => {
    const opts = await options({ apiServer: server.origin, ca: server.ca, expectImmutable: false });
    const report = await runPreflight(opts);
    // Without a time the service vouches for (the CLI), the clock's skew is not measured, and says so.
    expect(report.checks.filter((c) => c.status !== "pass")).toEqual([{ name: "clock", status: "skipped", detail: expect.stringMatching(/^not measured: /) }]);
    expect(report.checks.map((c) => c.name)).toEqual([
      "root",
      "cgroup-v2",
      "swap-off",
      "kernel-modules",
      "ports",
      "var-free-space",
      "clock",
      "api-server-reachable",
      "usr-writable",
    ]);
    expect(report.ok).toBe(true);
    expect((opts.host as RecordingHostCommands).calls).toEqual([]);
  });

  it("fails without cgroup v2, and `ignore` makes that a warning", async () => {
    const drop = (root: string) => rm(path.join(root, "sys/fs/cgroup/cgroup.controllers"));
    expect(await only("cgroup-v2", {}, drop)).toMatchObject({ status: "fail", ok: false });
    expect(await only("cgroup-v2", { ignore: ["cgroup-v2"] }, drop)).toMatchObject({ status: "warn", ok: true, detail: expect.stringContaining("(ignored)") });
  });

  it("fails with swap on, naming the device", async () => {
    const swap = (root: string) => writeFile(path.join(root, "proc/swaps"), "Filename\tType\tSize\tUsed\tPriority\n/dev/zram0 partition 4194300 0 100\n");
    expect(await only("swap-off", {}, swap)).toMatchObject({ status: "fail", detail: expect.stringContaining("/dev/zram0") });
  });

  it("fails when a required kernel module is neither loaded nor available", async () => {
    const noBridge = (root: string) => rm(path.join(root, "lib/modules"), { recursive: true });
    expect(await only("kernel-modules", {}, noBridge)).toMatchObject({ status: "fail", detail: expect.stringContaining("br_netfilter") });
    expect(await only("kernel-modules")).toMatchObject({ status: "pass", detail: "overlay loaded, br_netfilter loadable" });
  });

  it("fails when port 10250 is taken", async () => {
    const blocker: Server = createServer();
    const bound = await new Promise<boolean>((resolve) => {
      blocker.once("error", () => resolve(false));
      blocker.listen(10250, "127.0.0.1", () => resolve(true));
    });
    try {
      expect(await only("ports")).toMatchObject({ status: "fail", detail: expect.stringContaining("10250 is in use") });
    } finally {
      if (bound) blocker.close();
    }
  });

  it("fails on a clock before the agent existed; without a reference time it does not claim to have measured the skew", async () => {
    expect(await only("clock", { now: () => new Date("2001-01-01T00:00:00Z") })).toMatchObject({ status: "fail" });
    // An hour off, but nothing to compare it with: not a pass.
    expect(await only("clock", { now: () => new Date(Date.now() + 3_600_000) })).toMatchObject({
      status: "skipped",
      ok: true,
      detail: expect.stringMatching(/^not measured: no time the service vouches for/),
    });
  });

  describe("as a step, the clock is measured against the envelope's issuedAt (the service's clock)", () => {
    /** Runs a preflight step of the clock check on a node whose clock is `offsetMs` off the service's. */
    const clockStep = async (offsetMs: number) => {
      const opts = await options();
      const deps = { ...depsFor(opts.root, new RecordingHostCommands()), now: () => new Date(Date.now() + offsetMs) };
      return runStep(sign({ stepId: "preflight", kind: "preflight", params: { checks: ["clock"] } }), deps);
    };

    it("warns of a node 3 minutes ahead, naming the offset: it may as well be a step that waited in the queue", async () => {
      const run = await clockStep(180_000);
      expect(run).toMatchObject({ outcome: "succeeded", output: { checks: [{ name: "clock", status: "warn" }] } });
      expect(run.outcome === "succeeded" && JSON.stringify(run.output)).toMatch(/clock is up to 18\d\.\d s ahead of the service's, or this step waited/);
    });

    it("fails a node 3 minutes behind, naming the offset", async () => {
      const run = await clockStep(-180_000);
      expect(run).toMatchObject({ outcome: "failed", error: { code: "preflight_failed" } });
      expect(run.outcome === "failed" && run.error.message).toMatch(/clock: clock is at least 1[78]\d\.\d s behind the service's/);
    });

    it("passes a node within the tolerance either way", async () => {
      for (const offset of [-10_000, 0, 10_000]) {
        const run = await clockStep(offset);
        expect(run).toMatchObject({ outcome: "succeeded", output: { checks: [{ name: "clock", status: "pass" }] } });
        expect(run.outcome === "succeeded" && JSON.stringify(run.output)).toMatch(
          /clock within 30\.0 s of the service's: offset [+-]\d+\.\d s against step envelope preflight's issuedAt/,
        );
      }
    });
  });

  it("reaches the API server over TLS, fails on a closed port, skips without one", async () => {
    expect(await only("api-server-reachable", { apiServer: server.origin, ca: server.ca })).toMatchObject({
      status: "pass",
      detail: expect.stringContaining("certificate trusted"),
    });
    // Without the cluster CA the handshake still proves reachability.
    expect(await only("api-server-reachable", { apiServer: server.origin })).toMatchObject({ status: "pass", detail: expect.stringContaining("not verified") });
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    const port = (closed.address() as { port: number }).port;
    await new Promise<void>((r) => closed.close(() => r()));
    expect(await only("api-server-reachable", { apiServer: `https://127.0.0.1:${port}` })).toMatchObject({ status: "fail" });
    expect(await only("api-server-reachable")).toMatchObject({ status: "skipped", ok: true });
  });

  it("reports whether /usr is writable and whether that matches the plan", async () => {
    expect(await only("usr-writable")).toMatchObject({ status: "pass", detail: "/usr is writable" });
    expect(await only("usr-writable", { expectImmutable: true })).toMatchObject({ status: "warn", ok: true });
  });

  it("as a step: a failed check fails it with preflight_failed, an ignored one does not", async () => {
    const opts = await options();
    await writeFile(path.join(opts.root, "proc/swaps"), "Filename\tType\tSize\tUsed\tPriority\n/swapfile file 1048572 0 -2\n");
    const deps = depsFor(opts.root, new RecordingHostCommands());
    const failed = await runStep(sign({ stepId: "preflight", kind: "preflight", params: { checks: ["swap-off", "cgroup-v2"] } }), deps);
    expect(failed).toMatchObject({
      outcome: "failed",
      error: { code: "preflight_failed", retryable: false, message: expect.stringContaining("swap-off: swap is active on /swapfile") },
    });
    const ignored = await runStep(sign({ stepId: "preflight", kind: "preflight", params: { checks: ["swap-off", "cgroup-v2"], ignore: ["swap-off"] } }), deps);
    expect(ignored).toMatchObject({
      outcome: "succeeded",
      output: {
        checks: [
          { name: "swap-off", status: "warn" },
          { name: "cgroup-v2", status: "pass" },
        ],
      },
    });
  });

  it("fails an unknown check rather than skipping it", async () => {
    expect(await only("teleport")).toMatchObject({ status: "fail", ok: false });
  });

  const unshare = ["/usr/bin/unshare", "/bin/unshare"].find((p) => existsSync(p));
  const canMount = process.geteuid?.() === 0 && unshare !== undefined;
  if (!canMount)
    console.warn(`skipping the small-/var preflight test: needs root and unshare (euid ${String(process.geteuid?.())}, unshare ${unshare ?? "missing"})`);
  it.skipIf(!canMount)("fails with less than 2 GiB free in /var (a 64 MiB tmpfs in a private mount namespace)", async () => {
    const opts = await options();
    const script = `import { runPreflight } from ${JSON.stringify(path.resolve("node-agent/src/preflight.ts"))};
const r = await runPreflight({ root: process.argv[2], host: { run: async () => ({ code: 0, stdout: "", stderr: "" }) }, checks: ["var-free-space"], now: () => new Date() });
process.stdout.write(JSON.stringify(r));`;
    const file = path.join(opts.root, "..", `${path.basename(opts.root)}-preflight.mts`);
    await writeFile(file, script);
    try {
      const varDir = path.join(opts.root, "var");
      const out = spawnSync(
        unshare!,
        ["-m", "sh", "-c", `mount -t tmpfs -o size=64m tmpfs "$1" && exec node --import tsx "$2" "$3"`, "sh", varDir, file, opts.root],
        { encoding: "utf8", cwd: process.cwd(), timeout: 30_000 },
      );
      expect(out.stderr).toBe("");
      const report = JSON.parse(out.stdout) as { ok: boolean; checks: { status: string; detail: string }[] };
      expect(report).toMatchObject({
        ok: false,
        checks: [{ status: "fail", detail: expect.stringMatching(/^0\.\d GiB free in \/var; at least 2 GiB needed$/) }],
      });
    } finally {
      await rm(file, { force: true });
    }
    // The tmpfs lived only in the child's namespace.
    expect(spawnSync("findmnt", ["-n", path.join(opts.root, "var")], { encoding: "utf8" }).stdout.trim()).toBe("");
  });
});
