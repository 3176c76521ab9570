/**
 * One agent at a time on a machine: a `reset` beside a running agent (or a drain-mode timer start during a manual
 * reset) would interleave manifest writes, losing undo records or bringing undone ones back.
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { PassThrough } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { acquireAgentLock, AgentBusyError } from "../src/agent-lock.js";
import { agentFiles } from "../src/agent-files.js";
import { main } from "../src/cli.js";
import { EXIT } from "../src/exit-codes.js";
import { RecordingHostCommands } from "../src/host-commands.js";
import { Manifest } from "../src/manifest.js";
import { HOSTS, scratchRoot, type ScratchRoot } from "./support-service/scratch-root.js";

let root: ScratchRoot;
beforeEach(async () => {
  root = await scratchRoot({ ...HOSTS.ubuntu, "/etc/machine-id": `${randomBytes(16).toString("hex")}\n` });
});
afterEach(async () => {
  await root.remove();
});

const lockFile = () => `${agentFiles(root.dir).stateDir}/agent.lock`;
const bootId = () =>
  readFile("/proc/sys/kernel/random/boot_id", "utf8").then(
    (s) => s.trim(),
    () => "unknown",
  );

describe("the agent lock", () => {
  it("is held by one at a time, names the holder, and is free again once released", async () => {
    const run = await acquireAgentLock(root.dir, "run");
    const refused = await acquireAgentLock(root.dir, "reset").catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(AgentBusyError);
    expect(refused).toMatchObject({ code: "agent_busy", holder: { pid: process.pid, what: "run" } });
    expect((refused as Error).message).toMatch(/another flexnode-agent run \(pid \d+\) is running on this machine; reset waits for it/);
    await run.release();
    const reset = await acquireAgentLock(root.dir, "reset");
    await reset.release();
  });

  it("is taken over from a holder that is gone: its process ended, it ran in an earlier boot, or it had this pid before a restart", async () => {
    const ended = spawnSync(process.execPath, ["-e", ""]).pid!;
    for (const holder of [
      { pid: ended, what: "run", bootId: await bootId(), since: new Date().toISOString() },
      { pid: process.pid, what: "run", bootId: "an-earlier-boot", since: new Date().toISOString() },
      // An agent that is PID 1 of its container gets the same pid on every start: a lock it did not take is its last life's.
      { pid: process.pid, what: "run", bootId: await bootId(), since: new Date().toISOString() },
    ]) {
      await (await acquireAgentLock(root.dir, "run")).release();
      await writeFile(lockFile(), JSON.stringify(holder));
      const lock = await acquireAgentLock(root.dir, "reset");
      expect(JSON.parse(await readFile(lockFile(), "utf8"))).toMatchObject({ pid: process.pid, what: "reset" });
      await lock.release();
    }
  });

  it("makes the CLI's reset wait for a running agent (exit 75) and undo nothing", async () => {
    const manifest = await Manifest.open(root.dir);
    await manifest.record("kernel-modules", { type: "module", name: "br_netfilter" });
    const before = await readFile(Manifest.file(root.dir), "utf8");
    const run = await acquireAgentLock(root.dir, "run");
    const err = new PassThrough();
    const host = new RecordingHostCommands();
    const code = await main(["--root", root.dir, "reset"], { stdout: new PassThrough(), stderr: err, env: {}, host });
    expect(code).toBe(EXIT.busy);
    expect(String(err.read())).toMatch(/another flexnode-agent run .* stop it first/);
    expect(host.calls).toEqual([]);
    expect(await readFile(Manifest.file(root.dir), "utf8")).toBe(before);
    await run.release();
  });
});
