/**
 * The agent on a real systemd host: a Debian 12 machine (systemd 252 as PID 1, /usr read-only like Flatcar, /etc,
 * /var and /opt writable, its own network namespace) booted with systemd-nspawn, the agent installed as its sysext
 * image and merged by the machine's own systemd-sysext, the shipped unit unchanged, and the whole service (the
 * sandbox stack) on the host's loopback. The plan runs against real tools: systemctl, systemd-sysext refresh of real
 * squashfs images (containerd from Debian's packages; the kubelet stand-in), sysctl in the machine's namespace,
 * modprobe, Debian's containerd, the kubelet stand-in's TLS bootstrap over the wire.
 *
 * The tests run in order on one machine: first boot, the unit's security, enrolment to Ready with a kill -9 inside a
 * step, a stop while the service is unreachable, a reboot, a module the kernel lacks, decommission and reset; then
 * the same machine enrols again in drain mode (no resident agent once Ready; the timer starts it for the reset).
 * Skipped, saying why, where nspawn cannot run.
 */
import { copyFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sources } from "../../node-agent/packaging/layout.js";
import { planFor } from "../sandbox/failure-injection.js";
import { treeDiff, type TreeSnapshot } from "../sandbox/sandbox-root.js";
import { hostTierAvailability } from "./availability.js";
import { AGENT_UNIT, shadowedValue, startHostWorld, type HostWorld } from "./host-world.js";
import { MIRROR_NAMES } from "./images.js";
import { agentJournal, machineTree, mergedExtensions, treeHash, unitProps, waitUntil, within } from "./support.js";

const availability = await hostTierAvailability();
if (!availability.ok) console.warn(`real-host tier skipped: ${availability.reason}`);
const RELOAD_UNIT = "flexnode-sysext-reload.service";
const TIMER_UNIT = "flexnode-agent.timer";

let world: HostWorld;
let workDir: string;
let usrBefore: string;
let hostIpForward: string;
let nodeId: string;
let prePlan: TreeSnapshot;

const hostSysctl = (key: string) => readFile(`/proc/sys/${key.replaceAll(".", "/")}`, "utf8").then((v) => v.trim());
const inMachine = async (...argv: string[]) => (await world.machine.exec(argv)).stdout.trim();

describe.skipIf(!availability.ok)(`the agent on a real systemd host${availability.ok ? "" : ` (skipped: ${availability.reason})`}`, () => {
  beforeAll(async () => {
    workDir = await mkdtemp("/var/tmp/flexnode-host-tier-");
    // Production's reset wait (120 s): drain mode's timer must fit in it, as it must in production.
    world = await startHostWorld({ workDir, timing: { resetWaitMs: 120_000 }, log: (line) => console.warn(line) });
    usrBefore = await treeHash(join(world.image.root, "usr"));
    hostIpForward = await hostSysctl("net.ipv4.ip_forward");
    // As Ignition leaves a Flatcar first boot: the image in /var/lib/extensions (host-world.ts) and the agent enabled.
    await mkdir(world.machine.path("/etc/systemd/system/multi-user.target.wants"), { recursive: true });
    await symlink(`/usr/lib/systemd/system/${AGENT_UNIT}`, world.machine.path(`/etc/systemd/system/multi-user.target.wants/${AGENT_UNIT}`));
    await world.boot();
  }, 240_000);

  afterAll(async () => {
    const keep = process.env.FLEXNODE_HOST_KEEP === "1";
    await world?.close({ keep });
    if (!keep && workDir) await rm(workDir, { recursive: true, force: true });
  }, 120_000);

  it("first boot: systemd-sysext merges the agent's image, but systemd 252 does not start the enabled unit it ships", async () => {
    expect(await inMachine("systemctl", "--version")).toMatch(/^systemd 252 /);
    expect(await mergedExtensions(world.machine)).toEqual(["flexnode-agent"]);
    expect(await unitProps(world.machine, "systemd-sysext.service", ["ActiveState", "Result"])).toEqual({ ActiveState: "active", Result: "success" });
    // Planned before the merge, the unit was "not found" then: enabled, yet never started.
    expect(await unitProps(world.machine, AGENT_UNIT, ["UnitFileState", "ActiveState", "ExecMainStartTimestampMonotonic"])).toEqual({
      UnitFileState: "enabled",
      ActiveState: "inactive",
      ExecMainStartTimestampMonotonic: "0",
    });
  });

  it("with flexnode-sysext-reload.service installed, the next boot starts the agent from its image", async () => {
    await copyFile(join(sources.unit, "..", RELOAD_UNIT), world.machine.path(`/etc/systemd/system/${RELOAD_UNIT}`));
    await world.machine.exec(["systemctl", "daemon-reload"]);
    await world.machine.exec(["systemctl", "enable", RELOAD_UNIT]);
    await world.machine.stop();
    await world.boot();
    // Started at boot; not enrolled yet, so it exits 3 and systemd keeps restarting it (RestartPreventExitStatus lacks 3).
    const started = await waitUntil("the agent started at boot and reported 'not enrolled'", 30_000, async () => {
      const p = await unitProps(world.machine, AGENT_UNIT, ["ExecMainStatus", "ExecMainStartTimestampMonotonic"]);
      return p["ExecMainStatus"] === "3" ? p : undefined;
    });
    expect(Number(started["ExecMainStartTimestampMonotonic"])).toBeGreaterThan(0);
    expect(await unitProps(world.machine, RELOAD_UNIT, ["ActiveState", "Result"])).toEqual({ ActiveState: "active", Result: "success" });
    // Held still while the node enrols, so the tree before the plan is taken with no step running.
    await world.machine.exec(["systemctl", "stop", AGENT_UNIT]);
  });

  it("runs the shipped unit unchanged, and systemd-analyze security rates it no worse than 6.0", async () => {
    const shipped = await readFile(sources.unit, "utf8");
    expect(await inMachine("cat", `/usr/lib/systemd/system/${AGENT_UNIT}`)).toBe(shipped.trim());
    expect(await inMachine("systemctl", "show", AGENT_UNIT, "-p", "DropInPaths", "--value")).toBe(`/usr/lib/systemd/system/${AGENT_UNIT}.d/10-sysext.conf`);
    const security = await world.machine.exec(["systemd-analyze", "security", "--no-pager", AGENT_UNIT], { allowFailure: true });
    const score = Number(/Overall exposure level for \S+: (\d+\.\d+)/.exec(security.stdout)?.[1]);
    expect(score, security.stdout.slice(-400)).toBeLessThanOrEqual(6.0);
  });

  it("enrols with the sandbox's enrolment URL and reaches Ready under systemd; a kill -9 inside a step is restarted and converges", async () => {
    const { stack, machine } = world;
    const { enrolmentUrl } = await stack.createToken({ maxUses: 1 });
    const enrol = JSON.parse(await inMachine("flexnode-agent", "--output", "json", "enrol", "--url", enrolmentUrl)) as {
      ok: boolean;
      enrolment: { nodeId: string; httpStatus: number; immutable: { readOnlyUsr: boolean } };
    };
    expect(enrol).toMatchObject({ ok: true, enrolment: { httpStatus: 201, immutable: { readOnlyUsr: true } } });
    nodeId = enrol.enrolment.nodeId;
    // The killed agent's message comes back when its lock lapses: 15 s here instead of the queue's 60 s.
    await world.shortenQueueLock(nodeId, "PT15S", 30_000);
    prePlan = await machineTree(machine);

    const hold = stack.artifacts.hold(MIRROR_NAMES.kubernetes);
    await machine.exec(["systemctl", "start", AGENT_UNIT]);
    await within(hold.requested, 120_000, "the agent asks the mirror for the Kubernetes image (inside the kubernetes-binaries step)");
    const before = await unitProps(machine, AGENT_UNIT, ["MainPID", "NRestarts"]);
    await machine.exec(["kill", "-9", before["MainPID"]!]);
    hold.release();
    await waitUntil("systemd restarts the killed agent", 30_000, async () => {
      const p = await unitProps(machine, AGENT_UNIT, ["MainPID", "NRestarts", "ActiveState"]);
      return p["ActiveState"] === "active" && p["MainPID"] !== before["MainPID"] && p["MainPID"] !== "0" ? p : undefined;
    });
    expect(Number((await unitProps(machine, AGENT_UNIT, ["NRestarts"]))["NRestarts"])).toBe(Number(before["NRestarts"]) + 1);

    const saga = await stack.harness.simulator.waitFor(nodeId, { timeoutMs: 240_000 });
    expect({ status: saga.runtimeStatus, output: saga.output }).toEqual({ status: "Completed", output: { status: "Ready" } });
    const journal = await agentJournal(machine, AGENT_UNIT);
    // The killed attempt started once before the kill and once after the redelivery, and succeeded once.
    expect(journal.filter((l) => l.includes("▶ kubernetes-binaries (installSysext, attempt 1)"))).toHaveLength(2);
    expect(journal.filter((l) => l.includes("✓ kubernetes-binaries succeeded"))).toHaveLength(1);
    const plan = planFor({ immutable: true, arch: process.arch === "x64" ? "amd64" : "arm64", catalog: stack.artifacts.catalog });
    for (const step of plan)
      expect(
        journal.filter((l) => l.endsWith(`✓ ${step.stepId} succeeded`)),
        step.stepId,
      ).toHaveLength(1);
  });

  it("left the node as the plan says: images merged by real systemd-sysext, containerd and the kubelet running, sysctls in the machine only", async () => {
    const { machine, stack, csr } = world;
    expect(await mergedExtensions(machine)).toEqual(["containerd", "flexnode-agent", `kubernetes-${planKubernetesVersion()}`]);
    for (const unit of ["containerd.service", "kubelet.service"])
      expect(await unitProps(machine, unit, ["ActiveState", "UnitFileState"]), unit).toEqual({ ActiveState: "active", UnitFileState: "enabled" });
    // Debian's containerd answers on the socket the kubelet unit names.
    expect(await inMachine("ctr", "--address", "/run/containerd/containerd.sock", "version")).toMatch(/Server:\s+Version:\s+1\.6\./);
    expect(csr.decisions).toEqual([{ node: nodeId, outcome: "issued" }]);
    expect(stack.kube.inspect().nodes.map((n) => ({ name: n.name, ready: n.ready }))).toEqual([{ name: nodeId, ready: "True" }]);
    expect(await inMachine("readlink", "/var/lib/kubelet/pki/kubelet-client-current.pem")).toMatch(/^kubelet-client-\d{4}-.*\.pem$/);

    expect(await inMachine("sysctl", "-n", "net.ipv4.ip_forward")).toBe("1");
    expect(await hostSysctl("net.ipv4.ip_forward")).toBe(hostIpForward);
    for (const key of world.shadowedSysctls) expect(await shadowedValue(world, key), key).toBe(planSysctls()[key]);
    // Only /etc, /var and /opt changed; /usr is checked against its hash at the end.
    const changed = treeDiff(prePlan, await machineTree(machine)).map((l) => l.slice(2).split(" ")[0]!);
    expect(changed.length).toBeGreaterThan(0);
    expect(changed.filter((p) => !/^(etc|var|opt)\//.test(p))).toEqual([]);
  });

  it("ends by itself on SIGTERM while the service is unreachable (systemd never has to kill it)", async () => {
    const { machine } = world;
    // The test's bound on the stop (a runtime drop-in, gone at the next boot): the shipped unit allows 30 s.
    await machine.sh(
      `mkdir -p /run/systemd/system/${AGENT_UNIT}.d && printf '[Service]\\nTimeoutStopSec=10s\\n' > /run/systemd/system/${AGENT_UNIT}.d/50-test-stop-bound.conf && systemctl daemon-reload`,
    );
    const errorsBefore = (await agentJournal(machine, AGENT_UNIT)).filter((l) => l.includes("warning (servicebus")).length;
    // The service becomes unreachable: the machine's side of the bridge goes away, the agent's connections drop.
    await machine.sh("systemctl stop 'flexnode-bridge-*.socket' 'flexnode-bridge-*.service'");
    await waitUntil("the agent notices its connection dropped", 30_000, async () =>
      (await agentJournal(machine, AGENT_UNIT)).filter((l) => l.includes("warning (servicebus")).length > errorsBefore ? true : undefined,
    );
    await machine.exec(["systemctl", "stop", AGENT_UNIT], { timeoutMs: 60_000 });
    expect(await unitProps(machine, AGENT_UNIT, ["Result", "ExecMainCode", "ExecMainStatus"])).toEqual({
      Result: "success",
      ExecMainCode: "1",
      ExecMainStatus: "0",
    });
  });

  it("comes back after a reboot: the images merge, and the agent, containerd and the kubelet start again", async () => {
    const { machine } = world;
    await machine.stop();
    await world.boot();
    expect(await mergedExtensions(machine)).toEqual(["containerd", "flexnode-agent", `kubernetes-${planKubernetesVersion()}`]);
    for (const unit of [AGENT_UNIT, "containerd.service", "kubelet.service"]) {
      await waitUntil(`${unit} active after the reboot`, 30_000, async () =>
        (await unitProps(machine, unit, ["ActiveState"]))["ActiveState"] === "active" ? true : undefined,
      );
    }
    await waitUntil("the agent is back on its mailbox", 30_000, async () =>
      (await agentJournal(machine, AGENT_UNIT, { thisBoot: true })).some((l) => l.includes("listening on mailbox")) ? true : undefined,
    );
  });

  it("modprobe of a module this kernel lacks fails as the kernelModules step would report it", async () => {
    const r = await world.machine.exec(["modprobe", "flexnode_no_such_module"], { allowFailure: true });
    expect({ code: r.code, stderr: r.stderr.trim() }).toEqual({
      code: 1,
      stderr: expect.stringMatching(/^modprobe: FATAL: Module flexnode_no_such_module not found in directory \/lib\/modules\//),
    });
    // The plan's own modules are loaded or built in here, so the step passed (see the Ready test).
    for (const module of ["overlay", "br_netfilter"])
      expect((await world.machine.exec(["modprobe", "--dry-run", module], { allowFailure: true })).code, module).toBe(0);
  });

  it("decommission: the agent resets the machine to its tree before the plan, unmerges the images, and /usr was never written", async () => {
    const { machine, stack } = world;
    const res = await stack.admin("POST", `/api/manage/nodes/${nodeId}/decommission`);
    expect(res.status).toBe(202);
    const offboard = await stack.harness.simulator.waitFor(`${nodeId}:offboard`, { timeoutMs: 120_000 });
    expect(offboard.runtimeStatus).toBe("Completed");
    // Its queue gone and the node Offboarded, the agent ends with "no mailbox" (6), which systemd does not restart.
    const ended = await waitUntil("the agent ends after offboarding", 60_000, async () => {
      const p = await unitProps(machine, AGENT_UNIT, ["ActiveState", "ExecMainStatus"]);
      return p["ActiveState"] === "failed" || p["ActiveState"] === "inactive" ? p : undefined;
    });
    expect(ended["ExecMainStatus"]).toBe("6");
    expect((await agentJournal(machine, AGENT_UNIT)).filter((l) => l.includes("✓ reset succeeded"))).toHaveLength(1);

    expect(treeDiff(prePlan, await machineTree(machine))).toEqual([]);
    expect(await mergedExtensions(machine)).toEqual(["flexnode-agent"]);
    for (const unit of ["containerd.service", "kubelet.service"]) expect((await unitProps(machine, unit, ["LoadState"]))["LoadState"], unit).toBe("not-found");
    expect(await inMachine("sysctl", "-n", "net.ipv4.ip_forward")).toBe("0");
    for (const key of world.shadowedSysctls) expect(await shadowedValue(world, key), key).toBe(await hostSysctl(key));
    expect(await hostSysctl("net.ipv4.ip_forward")).toBe(hostIpForward);
    expect(await treeHash(join(world.image.root, "usr"))).toBe(usrBefore);
  });

  it("drain mode: once Ready the agent exits (nothing resident); the timer starts it to run the decommission's reset", async () => {
    const { machine, stack } = world;
    const journal = async () =>
      (await machine.exec(["journalctl", "-b", "-o", "short-precise", "--no-pager", "-u", AGENT_UNIT, "-u", TIMER_UNIT])).stdout
        .split("\n")
        .filter((l) => !/step-|^\S+ \S+ \S+ \S+ \S+ {3}/.test(l))
        .slice(-30)
        .join("\n");
    // The operator's choice: mode "drain" in agent.json, enrol, then the agent and the image's timer enabled. The tier
    // shortens the timer from 50 s to 10 s with a runtime drop-in; the benchmark measures the shipped interval.
    const config = JSON.parse(await readFile(machine.path("/etc/flexnode/agent.json"), "utf8")) as Record<string, unknown>;
    await writeFile(machine.path("/etc/flexnode/agent.json"), `${JSON.stringify({ ...config, mode: "drain" }, null, 2)}\n`, { mode: 0o600 });
    await machine.sh(
      `mkdir -p /run/systemd/system/${TIMER_UNIT}.d && printf '[Timer]\\nOnUnitInactiveSec=\\nOnUnitInactiveSec=10s\\n' > /run/systemd/system/${TIMER_UNIT}.d/50-test-interval.conf && systemctl daemon-reload`,
    );

    const { enrolmentUrl } = await stack.createToken({ maxUses: 1 });
    const since = new Date().toISOString();
    const again = JSON.parse(await inMachine("flexnode-agent", "--output", "json", "enrol", "--url", enrolmentUrl)) as {
      enrolment: { nodeId: string; httpStatus: number };
    };
    expect(again.enrolment).toMatchObject({ nodeId, httpStatus: 201 });
    // Enabled first (part of the installation the reset must leave), started once the tree before the plan is taken.
    await machine.exec(["systemctl", "enable", TIMER_UNIT]);
    const before = await machineTree(machine);
    await machine.exec(["systemctl", "start", AGENT_UNIT, TIMER_UNIT]);
    expect(await sagaRun(nodeId, since, 240_000)).toMatchObject({ runtimeStatus: "Completed", output: { status: "Ready" } });

    // Ready and quiet: the agent ends by itself (exit 0), and no agent process is left on the node.
    const drained = await waitUntil("the agent exits after draining", 60_000, async () => {
      const p = await unitProps(machine, AGENT_UNIT, ["ActiveState", "MainPID", "ExecMainStatus", "Result"]);
      return p["ActiveState"] === "inactive" ? p : undefined;
    });
    expect(drained, await journal()).toEqual({ ActiveState: "inactive", MainPID: "0", ExecMainStatus: "0", Result: "success" });
    expect(
      (await agentJournal(machine, AGENT_UNIT, { thisBoot: true })).filter((l) => l.includes("queue drained and node Ready")).length,
      await journal(),
    ).toBeGreaterThanOrEqual(1);
    expect(await agentPidsIn(), await journal()).toEqual([]);
    expect(await unitProps(machine, TIMER_UNIT, ["ActiveState"]), await journal()).toEqual({ ActiveState: "active" });

    const decommissioned = new Date().toISOString();
    expect((await stack.admin("POST", `/api/manage/nodes/${nodeId}/decommission`)).status).toBe(202);
    expect(await sagaRun(`${nodeId}:offboard`, decommissioned, 180_000)).toMatchObject({ runtimeStatus: "Completed" });
    // The reset ran on the node (started by the timer), not only the service-side compensation.
    const resets = (await agentJournal(machine, AGENT_UNIT, { thisBoot: true })).filter((l) => l.includes("✓ reset succeeded"));
    expect(resets, await journal()).toHaveLength(2);
    await waitUntil("the agent ends after offboarding", 60_000, async () =>
      (await unitProps(machine, AGENT_UNIT, ["ActiveState"]))["ActiveState"] !== "active" ? true : undefined,
    );
    // Nothing left to drain: the agent stopped its timer (until the next boot).
    expect(await unitProps(machine, TIMER_UNIT, ["ActiveState"]), await journal()).toEqual({ ActiveState: "inactive" });
    expect(treeDiff(before, await machineTree(machine))).toEqual([]);
    expect(await mergedExtensions(machine)).toEqual(["flexnode-agent"]);
    expect(await treeHash(join(world.image.root, "usr"))).toBe(usrBefore);
  });
});

/** Agent processes in the machine (pgrep would find itself: its command line names the pattern). */
async function agentPidsIn(): Promise<string[]> {
  const { stdout } = await world.machine.exec(["pgrep", "-x", "flexnode-agent"], { allowFailure: true });
  return stdout.split("\n").filter(Boolean);
}

/** The run of `instanceId` created at or after `since`, once it has finished. */
async function sagaRun(instanceId: string, since: string, timeoutMs: number) {
  return waitUntil(`${instanceId} (a run created after ${since}) finishes`, timeoutMs, async () => {
    const status = world.stack.harness.simulator.getStatus(instanceId);
    return status && status.createdTime >= since && ["Completed", "Failed", "Terminated"].includes(status.runtimeStatus) ? status : undefined;
  });
}

function planKubernetesVersion(): string {
  return /kubernetes-(.*)-(amd64|arm64)\.raw$/.exec(MIRROR_NAMES.kubernetes)![1]!;
}

function planSysctls(): Record<string, string> {
  const plan = planFor({ immutable: true, arch: "amd64", catalog: world.stack.artifacts.catalog });
  return plan.find((s) => s.kind === "sysctl")!.params["settings"] as Record<string, string>;
}
