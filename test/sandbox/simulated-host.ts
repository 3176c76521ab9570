/**
 * A simulated Linux host for one sandbox node: the four programs the agent may run (systemctl, modprobe, sysctl,
 * systemd-sysext), answered by a small model of the kernel and systemd instead of the real ones, and recorded through
 * the agent's own RecordingHostCommands. What the agent reads back from the host lives where it would on a machine,
 * under the node's sandbox root: loaded modules as `/sys/module/<name>`, sysctl values under `/proc/sys`. Units
 * (enabled/active) and merged sysext images are the simulated systemd's memory; a unit must have a unit file (in
 * /etc/systemd/system, /usr/lib/systemd/system, or a merged sysext image) to be enabled or started, as on a host.
 *
 * The simulated kubelet: when `kubelet.service` starts, it reads its unit's flags (bootstrap kubeconfig, cert dir,
 * node labels, `--hostname-override`), takes the bootstrap token from the kubeconfig the fetchSecret step wrote,
 * performs TLS bootstrap against the Kubernetes emulator (`joinNode`: the token must authenticate and the pool's RBAC
 * must allow the CSR and its auto-approval), and on success writes its client certificate into the cert dir — which
 * is what the plan's `waitFor` step watches. Its node name is `--hostname-override` or the lowercased host name, as
 * a real kubelet's.
 *
 * Failure injection: `failures` answer matching commands with a non-zero exit, like a host that refuses.
 */
import { mkdir, readFile, readdir, rm, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { generate } from "selfsigned";
import { RecordingHostCommands } from "../../node-agent/src/host-commands.js";
import type { HostCommandResult, HostCommands, HostProgram } from "../../node-agent/src/ports.js";
import type { KubeEmulator } from "../kube-emulator/index.js";

export interface HostFailure {
  program: HostProgram;
  /** Which invocations fail (default: all of `program`). */
  matches?(args: readonly string[]): boolean;
  result: HostCommandResult;
}

export interface KubeletEvent {
  at: number;
  what: "started" | "joined" | "join-refused" | "no-bootstrap-credential" | "stopped";
  detail: string;
}

export interface SimulatedHostOptions {
  root: string;
  /** The host name the kernel reports (the kubelet's default node name). */
  hostname: string;
  kube: KubeEmulator;
  failures?: HostFailure[];
  /** The kubelet's TLS bootstrap never completes (its CSR stays pending): no Node, no client certificate. */
  kubeletCsrNeverApproved?: boolean;
}

const BR_NETFILTER_SYSCTLS = ["net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables", "net.bridge.bridge-nf-call-arptables"];
const UNIT_DIRS = ["/etc/systemd/system", "/run/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"];
const ok = (stdout = ""): HostCommandResult => ({ code: 0, stdout, stderr: "" });
const fail = (code: number, stderr: string): HostCommandResult => ({ code, stdout: "", stderr: `${stderr}\n` });

export class SimulatedHost implements HostCommands {
  readonly recorder: RecordingHostCommands;
  readonly kubelet: KubeletEvent[] = [];
  private readonly enabled = new Set<string>();
  private readonly active = new Set<string>();
  /** Unit names provided by the sysext images merged by the last refresh. */
  private merged = new Map<string, string[]>();
  private readonly pending = new Set<Promise<void>>();

  constructor(private readonly o: SimulatedHostOptions) {
    this.recorder = new RecordingHostCommands((program, args) => this.answer(program, args));
  }

  run(program: HostProgram, args: readonly string[]): Promise<HostCommandResult> {
    return this.recorder.run(program, args);
  }

  /** Every recorded command as `program arg…`. */
  lines(): string[] {
    return this.recorder.lines();
  }

  activeUnits(): string[] {
    return [...this.active].sort();
  }

  enabledUnits(): string[] {
    return [...this.enabled].sort();
  }

  /** Waits for the kubelet's background bootstrap, if one is running. */
  async settle(): Promise<void> {
    await Promise.all([...this.pending]);
  }

  private async answer(program: HostProgram, args: readonly string[]): Promise<HostCommandResult> {
    const injected = this.o.failures?.find((f) => f.program === program && (f.matches?.(args) ?? true));
    if (injected) return injected.result;
    switch (program) {
      case "modprobe":
        return this.modprobe(args);
      case "sysctl":
        return this.sysctl(args);
      case "systemctl":
        return this.systemctl(args);
      case "systemd-sysext":
        return this.sysext(args);
    }
  }

  private fs(hostPath: string): string {
    return path.join(this.o.root, hostPath);
  }

  // ---- kernel ------------------------------------------------------------------------------------------------

  private async modprobe(args: readonly string[]): Promise<HostCommandResult> {
    const remove = args.includes("-r") || args.includes("--remove");
    const names = args.filter((a) => !a.startsWith("-"));
    if (names.length === 0) return fail(1, "modprobe: ERROR: missing module name");
    for (const name of names) {
      const sysName = name.replaceAll("-", "_");
      const dir = this.fs(`/sys/module/${sysName}`);
      if (remove) await rm(dir, { recursive: true, force: true });
      else await mkdir(dir, { recursive: true });
      await this.updateProcModules(sysName, !remove);
      // br_netfilter's own sysctls exist only while it is loaded (kernel default 1).
      if (sysName === "br_netfilter") {
        if (remove) await rm(this.fs("/proc/sys/net/bridge"), { recursive: true, force: true });
        else for (const key of BR_NETFILTER_SYSCTLS) if (!(await readFile(this.procSys(key)).catch(() => undefined))) await this.setSysctl(key, "1");
      }
    }
    return ok();
  }

  /** /proc/modules lists what is loaded, like /sys/module. */
  private async updateProcModules(name: string, loaded: boolean): Promise<void> {
    const file = this.fs("/proc/modules");
    const lines = (await readFile(file, "utf8").catch(() => "")).split("\n").filter(Boolean);
    const others = lines.filter((l) => l.split(" ")[0] !== name);
    const next = loaded ? [...others, `${name} 65536 0 - Live 0x0000000000000000`] : others;
    if (next.length !== lines.length || loaded !== lines.some((l) => l.split(" ")[0] === name)) await writeFile(file, next.map((l) => `${l}\n`).join(""));
  }

  private procSys(name: string): string {
    return path.join(this.fs("/proc/sys"), ...name.split("."));
  }

  private async setSysctl(name: string, value: string): Promise<void> {
    await mkdir(path.dirname(this.procSys(name)), { recursive: true });
    await writeFile(this.procSys(name), `${value.trim()}\n`);
  }

  private async sysctl(args: readonly string[]): Promise<HostCommandResult> {
    const flags = args.filter((a) => a.startsWith("-"));
    const rest = args.filter((a) => !a.startsWith("-"));
    if (flags.includes("-p") || flags.includes("--load")) {
      const file = rest[0] ?? "/etc/sysctl.conf";
      let text: string;
      try {
        text = await readFile(this.fs(file), "utf8");
      } catch {
        return fail(255, `sysctl: cannot open "${file}": No such file or directory`);
      }
      const applied: string[] = [];
      for (const line of text.split("\n")) {
        const m = /^\s*([^#;\s][^=]*?)\s*=\s*(.*?)\s*$/.exec(line);
        if (!m) continue;
        await this.setSysctl(m[1]!, m[2]!);
        applied.push(`${m[1]} = ${m[2]}`);
      }
      return ok(applied.map((l) => `${l}\n`).join(""));
    }
    const out: string[] = [];
    for (const item of rest) {
      const eq = item.indexOf("=");
      if (eq > 0) {
        await this.setSysctl(item.slice(0, eq), item.slice(eq + 1));
        out.push(`${item.slice(0, eq)} = ${item.slice(eq + 1)}`);
        continue;
      }
      try {
        const value = (await readFile(this.procSys(item), "utf8")).trim();
        out.push(flags.includes("-n") || flags.includes("--values") ? value : `${item} = ${value}`);
      } catch {
        return fail(255, `sysctl: cannot stat /proc/sys/${item.replaceAll(".", "/")}: No such file or directory`);
      }
    }
    return ok(out.map((l) => `${l}\n`).join(""));
  }

  // ---- systemd -----------------------------------------------------------------------------------------------

  private async unitExists(unit: string): Promise<boolean> {
    if ([...this.merged.values()].some((units) => units.includes(unit))) return true;
    for (const dir of UNIT_DIRS) {
      try {
        await readFile(this.fs(`${dir}/${unit}`));
        return true;
      } catch {
        // not in this directory
      }
    }
    return false;
  }

  private async systemctl(args: readonly string[]): Promise<HostCommandResult> {
    const words = args.filter((a) => !a.startsWith("-"));
    const now = args.includes("--now");
    const [verb, ...units] = words;
    switch (verb) {
      case "daemon-reload":
        return ok();
      case "is-active":
        return units.every((u) => this.active.has(u))
          ? ok(units.map(() => "active\n").join(""))
          : { code: 3, stdout: units.map((u) => (this.active.has(u) ? "active\n" : "inactive\n")).join(""), stderr: "" };
      case "is-enabled": {
        const states = await Promise.all(units.map(async (u) => (this.enabled.has(u) ? "enabled" : (await this.unitExists(u)) ? "disabled" : "not-found")));
        return states.every((s) => s === "enabled")
          ? ok(states.map((s) => `${s}\n`).join(""))
          : { code: 1, stdout: states.map((s) => `${s}\n`).join(""), stderr: "" };
      }
      case "show": {
        const unit = units[0] ?? "";
        const exists = await this.unitExists(unit);
        const props: Record<string, string> = {
          LoadState: exists ? "loaded" : "not-found",
          ActiveState: this.active.has(unit) ? "active" : "inactive",
          UnitFileState: this.enabled.has(unit) ? "enabled" : exists ? "disabled" : "",
        };
        return ok(
          Object.entries(props)
            .map(([k, v]) => `${k}=${v}\n`)
            .join(""),
        );
      }
      case "enable":
      case "start":
      case "restart":
      case "reload-or-restart":
        for (const u of units)
          if (!(await this.unitExists(u)))
            return fail(
              verb === "enable" ? 1 : 5,
              verb === "enable" ? `Failed to enable unit: Unit file ${u} does not exist.` : `Failed to ${verb} ${u}: Unit ${u} not found.`,
            );
        for (const u of units) {
          if (verb === "enable") this.enabled.add(u);
          if (verb !== "enable" || now) this.startUnit(u, verb !== "start");
        }
        return ok();
      case "disable":
      case "stop":
        for (const u of units) {
          if (verb === "disable") this.enabled.delete(u);
          if (verb === "stop" || now) this.stopUnit(u);
        }
        return ok();
      default:
        return fail(1, `systemctl (simulated): unsupported command ${args.join(" ")}`);
    }
  }

  private startUnit(unit: string, restart: boolean): void {
    if (this.active.has(unit) && !restart) return;
    this.active.add(unit);
    if (unit === "kubelet.service") this.track(this.kubeletStart());
  }

  private stopUnit(unit: string): void {
    if (!this.active.delete(unit)) return;
    if (unit === "kubelet.service") this.kubelet.push({ at: Date.now(), what: "stopped", detail: "kubelet.service stopped" });
  }

  private track(p: Promise<void>): void {
    const tracked = p.finally(() => this.pending.delete(tracked));
    this.pending.add(tracked);
  }

  private async sysext(args: readonly string[]): Promise<HostCommandResult> {
    const [verb = "status"] = args.filter((a) => !a.startsWith("-"));
    if (verb === "refresh" || verb === "merge") {
      this.merged = await this.readImages();
      return ok();
    }
    if (verb === "unmerge") {
      this.merged = new Map();
      return ok();
    }
    if (verb === "list" || verb === "status") return ok([...this.merged.keys()].map((n) => `${n}\n`).join(""));
    return fail(1, `systemd-sysext (simulated): unsupported command ${args.join(" ")}`);
  }

  /** Images in the sysext search paths the agent may write, with the units they ship (the sandbox image format). */
  private async readImages(): Promise<Map<string, string[]>> {
    const images = new Map<string, string[]>();
    for (const dir of ["/var/lib/extensions", "/etc/extensions"]) {
      let names: string[];
      try {
        names = await readdir(this.fs(dir));
      } catch {
        continue;
      }
      for (const file of names.filter((n) => n.endsWith(".raw"))) {
        const text = await readFile(this.fs(`${dir}/${file}`), "utf8").catch(() => "");
        const units = /^units=(.*)$/m.exec(text)?.[1]?.split(",").filter(Boolean) ?? [];
        images.set(file.slice(0, -".raw".length), units);
      }
    }
    return images;
  }

  // ---- the kubelet -------------------------------------------------------------------------------------------

  private async kubeletStart(): Promise<void> {
    const event = (what: KubeletEvent["what"], detail: string): void => {
      this.kubelet.push({ at: Date.now(), what, detail });
    };
    // The real kubelet bootstraps in the background after systemd reports it started.
    await new Promise((r) => setTimeout(r, 20));
    const flags = parseFlags(await readFile(this.fs("/etc/systemd/system/kubelet.service"), "utf8").catch(() => ""));
    const name = flags["hostname-override"] ?? this.o.hostname.toLowerCase();
    event("started", `kubelet started as node ${name}`);
    const bootstrapPath = flags["bootstrap-kubeconfig"] ?? "/var/lib/kubelet/bootstrap-kubeconfig";
    const token = /^\s*token:\s*(\S+)\s*$/m.exec(await readFile(this.fs(bootstrapPath), "utf8").catch(() => ""))?.[1];
    if (!token) return event("no-bootstrap-credential", `no token in ${bootstrapPath}: the kubelet cannot bootstrap`);
    if (this.o.kubeletCsrNeverApproved) return event("join-refused", "failure injected: the kubelet's client CSR stays Pending");
    const labels = Object.fromEntries(
      (flags["node-labels"] ?? "")
        .split(",")
        .filter(Boolean)
        .map((kv) => kv.split("=", 2) as [string, string]),
    );
    const joined = this.o.kube.joinNode(name, { bootstrapToken: token, labels });
    if (!joined.joined) return event("join-refused", joined.reason);
    const certDir = flags["cert-dir"] ?? "/var/lib/kubelet/pki";
    const pems = await generate(
      [
        { name: "commonName", value: `system:node:${name}` },
        { name: "organizationName", value: "system:nodes" },
      ],
      { keyType: "ec", curve: "P-256", algorithm: "sha256" },
    );
    await mkdir(this.fs(certDir), { recursive: true });
    // What the kubelet's certificate manager keeps: certificate and key in one PEM file (the emulator's CA did not sign
    // it; nothing in the sandbox verifies it).
    await writeFile(this.fs(`${certDir}/kubelet-client-current.pem`), `${pems.cert}${pems.private}`, { mode: 0o600 });
    event("joined", `node ${name} registered with the cluster (labels ${Object.keys(labels).length})`);
  }
}

/** `--name=value` flags of a unit's ExecStart (the simulated kubelet reads its own command line). */
function parseFlags(unit: string): Record<string, string> {
  const exec = /^ExecStart=(.*)$/m.exec(unit)?.[1] ?? "";
  const flags: Record<string, string> = {};
  for (const m of exec.matchAll(/--([a-z0-9-]+)=(\S*)/g)) flags[m[1]!] = m[2]!;
  return flags;
}
