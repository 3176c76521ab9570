/**
 * One booted machine of the real-host tier: a copy of the cached root with real systemd as PID 1 under
 * `systemd-nspawn --register=no --keep-unit -b`, laid out like Flatcar: /usr read-only (the cached root's /usr,
 * bind-mounted read-only, so its hash proves nothing wrote it), / with /etc, /var and /opt writable (the copy), its
 * own network namespace (see port-bridge.ts), loop devices bound in for systemd-sysext.
 *
 * Nothing is left behind: nspawn runs inside `unshare -m` (the /usr bind dies with it) in a cgroup of its own (so two
 * machines never share nspawn's `payload` cgroup), and dispose() stops the container (SIGTERM: systemd halts; a second
 * one after a bounded wait), then removes its cgroups, nspawn's propagation directory, loop devices still backed by its
 * images, and the copy. Every wait is bounded.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { createWriteStream, existsSync } from "node:fs";
import { mkdir, readdir, readFile, readlink, rm, rmdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { runTool } from "../../node-agent/packaging/run-tool.js";
import { detachLoopsBackedBy, ensureFreeLoopDevices } from "./loop-devices.js";
import { BRIDGE_MOUNT, bridgeStartScript, type PortBridge } from "./port-bridge.js";
import type { HostRoot } from "./root-image.js";

const CGROUP_HIERARCHIES = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup/systemd", "/sys/fs/cgroup"];
/** Loop devices an onboarding needs at once: the agent's, containerd's and Kubernetes' images, plus stale ones. */
const FREE_LOOP_DEVICES = 12;

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface MachineOptions {
  image: HostRoot;
  /** Parent of the machine's working directory. */
  workDir: string;
  /** Machine (and host) name; default flexnode-host-<random>. */
  name?: string;
}

export class HostMachine {
  readonly name: string;
  /** The machine's / as the host sees it (without /usr, which is the cached root's, read-only). */
  readonly rootfs: string;
  readonly consoleLog: string;
  private nspawn: ChildProcess | undefined;
  private exited: Promise<void> | undefined;
  private leader: number | undefined;
  private bridge: PortBridge | undefined;

  private constructor(
    readonly dir: string,
    readonly image: HostRoot,
    name: string,
  ) {
    this.name = name;
    this.rootfs = join(dir, "rootfs");
    this.consoleLog = join(dir, "console.log");
  }

  /** Copies the cached root (everything but /usr) and gives the machine its own id and host name. */
  static async prepare(o: MachineOptions): Promise<HostMachine> {
    const name = o.name ?? `flexnode-host-${randomBytes(3).toString("hex")}`;
    const dir = join(o.workDir, name);
    await mkdir(dir, { recursive: true });
    const machine = new HostMachine(dir, o.image, name);
    await mkdir(machine.rootfs);
    for (const entry of await readdir(o.image.root)) {
      if (entry === "usr") continue;
      await runTool("cp", ["-a", "--reflink=auto", join(o.image.root, entry), machine.rootfs]);
    }
    await mkdir(join(machine.rootfs, "usr"), { mode: 0o755 });
    await writeFile(join(machine.rootfs, "etc/machine-id"), `${randomBytes(16).toString("hex")}\n`, { mode: 0o444 });
    await writeFile(join(machine.rootfs, "etc/hostname"), `${name}\n`);
    return machine;
  }

  /** A path inside the machine, as the host sees it (not valid for /usr, /run, /proc…). */
  path(inside: string): string {
    return join(this.rootfs, inside);
  }

  get leaderPid(): number {
    if (this.leader === undefined) throw new Error(`${this.name} is not running`);
    return this.leader;
  }

  get running(): boolean {
    return this.nspawn !== undefined && this.nspawn.exitCode === null && this.nspawn.signalCode === null;
  }

  /** Boots and waits until systemd reports the boot finished; starts the port bridge's units when given one. */
  async boot(options: { bridge?: PortBridge; timeoutMs?: number } = {}): Promise<void> {
    if (this.running) throw new Error(`${this.name} is already running`);
    this.bridge = options.bridge ?? this.bridge;
    const loops = await ensureFreeLoopDevices(FREE_LOOP_DEVICES);
    const script = join(this.dir, "boot.sh");
    const nspawnArgs = [
      "--quiet",
      "--register=no",
      "--keep-unit",
      "--boot",
      `--directory=${this.rootfs}`,
      `--machine=${this.name}`,
      "--private-network",
      // nspawn writes none of these into the root (its tree is compared before and after).
      "--resolv-conf=off",
      "--timezone=off",
      "--link-journal=no",
      "--console=pipe",
      ...["/dev/loop-control", ...loops].map((d) => `--bind=${d}`),
      ...(this.bridge ? [`--bind=${this.bridge.dir}:${BRIDGE_MOUNT}`] : []),
    ];
    await writeFile(
      script,
      [
        "#!/bin/sh",
        "set -eu",
        `cg=${this.cgroupName()}`,
        `for h in ${CGROUP_HIERARCHIES.join(" ")}; do`,
        '  if [ -e "$h/cgroup.procs" ]; then mkdir -p "$h/$cg"; echo $$ > "$h/$cg/cgroup.procs"; fi',
        "done",
        `mount --bind -o ro ${shellQuote(join(this.image.root, "usr"))} ${shellQuote(join(this.rootfs, "usr"))}`,
        `exec systemd-nspawn ${nspawnArgs.map(shellQuote).join(" ")}`,
        "",
      ].join("\n"),
      { mode: 0o755 },
    );
    const log = createWriteStream(this.consoleLog, { flags: "a" });
    await once(log, "open");
    // cgroup v2 inside, as on Flatcar, also on a host that still mounts the v1 controllers (hybrid).
    const child = spawn("unshare", ["--mount", "--propagation", "private", "/bin/sh", script], {
      stdio: ["ignore", log, log],
      env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", SYSTEMD_NSPAWN_UNIFIED_HIERARCHY: "1" },
    });
    this.nspawn = child;
    this.exited = once(child, "exit").then(() => log.close());
    this.leader = await this.findLeader(child.pid!, 30_000);
    const deadline = Date.now() + (options.timeoutMs ?? 90_000);
    let state: ExecResult;
    // PID 1 opens its private bus socket a moment after it starts, and until it has created /run/systemd/system
    // (sd_booted) systemctl answers "offline": both are the first instants of a boot, not its outcome.
    do state = await this.exec(["systemctl", "is-system-running", "--wait"], { timeoutMs: Math.max(1, deadline - Date.now()), allowFailure: true });
    while (
      (/Failed to connect to bus/.test(state.stderr) || state.stdout.trim() === "offline") &&
      Date.now() < deadline &&
      (await new Promise((r) => setTimeout(r, 100, true)))
    );
    if (state.stdout.trim() !== "running") {
      const failed = await this.exec(["systemctl", "--failed", "--no-legend", "--plain"], { allowFailure: true });
      throw new Error(
        `${this.name} did not finish booting: ${state.stdout.trim() || state.stderr.trim()} (failed units: ${failed.stdout.trim() || "none"}; console: ${this.consoleLog})`,
      );
    }
    if (this.bridge) await this.sh(bridgeStartScript(this.bridge));
  }

  private cgroupName(): string {
    return `flexnode-host-tier-${this.name}`;
  }

  /** nspawn's child is the container's PID 1 (systemd), in a PID namespace of its own. */
  private async findLeader(nspawnPid: number, timeoutMs: number): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    const ownPidNs = await readlinkSafe("/proc/self/ns/pid");
    while (Date.now() < deadline) {
      if (!this.running)
        throw new Error(`systemd-nspawn exited at once: ${(await readFile(this.consoleLog, "utf8").catch(() => "")).trim().split("\n").slice(-5).join(" | ")}`);
      const children = (await readFile(`/proc/${nspawnPid}/task/${nspawnPid}/children`, "utf8").catch(() => ""))
        .trim()
        .split(/\s+/)
        .filter(Boolean)
        .map(Number);
      for (const pid of children) {
        const ns = await readlinkSafe(`/proc/${pid}/ns/pid`);
        const comm = (await readFile(`/proc/${pid}/comm`, "utf8").catch(() => "")).trim();
        if (ns !== undefined && ns !== ownPidNs && comm === "systemd") return pid;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`no container init under systemd-nspawn (pid ${nspawnPid}) within ${timeoutMs} ms`);
  }

  /** Runs a program inside the machine (all its namespaces, its root), like `machinectl shell` would. */
  async exec(argv: readonly string[], options: { timeoutMs?: number; allowFailure?: boolean; input?: string } = {}): Promise<ExecResult> {
    const timeoutMs = options.timeoutMs ?? 60_000;
    const child = spawn("nsenter", ["--target", String(this.leaderPid), "--all", "--", ...argv], {
      stdio: [options.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
      env: { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", LANG: "C.UTF-8", SYSTEMD_PAGER: "", SYSTEMD_COLORS: "0", TERM: "dumb" },
    });
    if (options.input !== undefined) child.stdin!.end(options.input);
    let stdout = "";
    let stderr = "";
    child.stdout!.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    const [code, signal] = (await once(child, "close")) as [number | null, NodeJS.Signals | null];
    clearTimeout(timer);
    const result = { code: code ?? 128, stdout, stderr: signal ? `${stderr}\n(${argv.join(" ")}: killed by ${signal} after ${timeoutMs} ms)` : stderr };
    if (result.code !== 0 && !options.allowFailure)
      throw new Error(`in ${this.name}: ${argv.join(" ")} exited ${result.code}: ${(stderr.trim() || stdout.trim()).split("\n").slice(-5).join(" | ")}`);
    return result;
  }

  /** `sh -c script` inside the machine. */
  sh(script: string, options: { timeoutMs?: number; allowFailure?: boolean } = {}): Promise<ExecResult> {
    return this.exec(["/bin/sh", "-c", script], options);
  }

  /** Shuts the machine down (systemd halts on nspawn's SIGTERM); kills it if that takes longer than `timeoutMs`. */
  async stop(timeoutMs = 30_000): Promise<void> {
    if (!this.nspawn || !this.exited) return;
    if (this.running) {
      this.nspawn.kill("SIGTERM");
      const stopped = await Promise.race([this.exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), timeoutMs))]);
      // A second SIGTERM makes nspawn terminate the container at once; SIGKILL if even that hangs.
      if (!stopped && this.running) this.nspawn.kill("SIGTERM");
      const gone = await Promise.race([this.exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 10_000))]);
      if (!gone && this.running) this.nspawn.kill("SIGKILL");
    }
    await this.exited;
    this.nspawn = undefined;
    this.leader = undefined;
    await this.removeCgroups();
  }

  /** Stops the machine and removes everything it left: cgroups, nspawn's directory, loop devices, the copy. */
  async dispose(options: { keep?: boolean } = {}): Promise<void> {
    await this.stop();
    const images = await Promise.all(
      ["/var/lib/extensions", "/etc/extensions"].map(async (d) => (await readdir(this.path(d)).catch(() => [])).map((f) => this.path(`${d}/${f}`))),
    );
    await detachLoopsBackedBy(images.flat());
    await rm(`/run/systemd/nspawn/propagate/${this.name}`, { recursive: true, force: true });
    if (!options.keep) await rm(this.dir, { recursive: true, force: true });
  }

  private async removeCgroups(): Promise<void> {
    for (const h of CGROUP_HIERARCHIES) {
      const top = join(h, this.cgroupName());
      if (!existsSync(top)) continue;
      await removeCgroupTree(top);
    }
  }
}

async function removeCgroupTree(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    if (entry.isDirectory()) await removeCgroupTree(join(dir, entry.name));
  }
  // Whatever still lives in it (nothing, once nspawn is gone) is killed first.
  await writeFile(join(dir, "cgroup.kill"), "1").catch(() => undefined);
  for (let i = 0; i < 50; i++) {
    try {
      await rmdir(dir);
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

async function readlinkSafe(path: string): Promise<string | undefined> {
  try {
    return await readlink(path);
  } catch {
    return undefined;
  }
}

function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}
