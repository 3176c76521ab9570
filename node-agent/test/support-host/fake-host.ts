/**
 * A model of the host behind the four programs, for the sandbox: it keeps kernel and systemd state in files under the
 * sandbox root where the agent (and preflight) read it on a real host — /sys/module, /proc/modules, /proc/sys —
 * plus /run/fakehost for what has no file on a real host (active units, merged sysext images). So the tree hash of the
 * root covers the "kernel" too, and a kill -9 anywhere leaves state a restarted agent reads back. Each effect is
 * written in an order a crash cannot make look done when it is not (/sys/module/<m> last on load, first on unload).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { release } from "node:os";
import * as path from "node:path";
import type { HostScript } from "../../src/host-commands.js";
import type { HostCommandResult } from "../../src/ports.js";

export interface FakeHostOptions {
  /** Sysctls a module brings with it (br_netfilter: net.bridge.*), created with value 0 when it loads. */
  moduleSysctls?: Record<string, string[]>;
  /** Units a sysext image provides once merged, by image name (without .raw). */
  sysextUnits?: Record<string, string[]>;
}

export const DEFAULT_FAKE_HOST: Required<FakeHostOptions> = {
  moduleSysctls: { br_netfilter: ["net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables"] },
  sysextUnits: { containerd: ["containerd.service"] },
};

const ok = (stdout = ""): HostCommandResult => ({ code: 0, stdout, stderr: "" });
const fail = (code: number, stderr: string, stdout = ""): HostCommandResult => ({ code, stdout, stderr });

function writeAtomic(file: string, content: string): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(`${file}.tmp`, content);
  renameSync(`${file}.tmp`, file);
}

function lines(file: string): string[] {
  return existsSync(file) ? readFileSync(file, "utf8").split("\n").filter(Boolean) : [];
}

export function fakeHostScript(root: string, options: FakeHostOptions = {}): HostScript {
  const moduleSysctls = options.moduleSysctls ?? DEFAULT_FAKE_HOST.moduleSysctls;
  const sysextUnits = options.sysextUnits ?? DEFAULT_FAKE_HOST.sysextUnits;
  const at = (p: string) => path.join(root, p);
  const procSys = (name: string) => path.join(at("/proc/sys"), ...name.split("."));
  const activeFile = at("/run/fakehost/active");
  const sysextFile = at("/run/fakehost/sysext");

  const knownModules = () => {
    const dep = at(`/lib/modules/${release()}/modules.dep`);
    return existsSync(dep)
      ? readFileSync(dep, "utf8")
          .split("\n")
          .map((l) => path.basename(l.split(":")[0] ?? "", ".ko"))
          .filter(Boolean)
      : [];
  };
  const unitFile = (unit: string): string | undefined => {
    for (const dir of ["/etc/systemd/system", "/usr/lib/systemd/system"]) if (existsSync(at(`${dir}/${unit}`))) return `${dir}/${unit}`;
    const merged = lines(sysextFile);
    if (merged.some((image) => (sysextUnits[image] ?? []).includes(unit))) return `/usr/lib/systemd/system/${unit}`;
    return undefined;
  };
  const wantsLinks = (unit: string): string[] => {
    const base = at("/etc/systemd/system");
    if (!existsSync(base)) return [];
    return readdirSync(base)
      .filter((d) => d.endsWith(".wants"))
      .map((d) => path.join(base, d, unit))
      .filter((l) => {
        try {
          readlinkSync(l);
          return true;
        } catch {
          return false;
        }
      });
  };

  const modprobe = (args: readonly string[]): HostCommandResult => {
    const remove = args[0] === "-r";
    const name = (remove ? args[1] : args[0])?.replaceAll("-", "_");
    if (!name) return fail(1, "modprobe: no module name");
    const sysDir = at(`/sys/module/${name}`);
    const modules = at("/proc/modules");
    if (remove) {
      if (!existsSync(sysDir)) return fail(1, `modprobe: FATAL: Module ${name} is not currently loaded.`);
      for (const s of moduleSysctls[name] ?? []) {
        rmSync(procSys(s), { force: true });
        // The module's /proc/sys directory goes with its last entry, as in the kernel.
        for (let d = path.dirname(procSys(s)); d !== at("/proc/sys") && existsSync(d) && readdirSync(d).length === 0; d = path.dirname(d))
          rmSync(d, { recursive: true });
      }
      writeAtomic(
        modules,
        lines(modules)
          .filter((l) => l.split(" ")[0] !== name)
          .map((l) => `${l}\n`)
          .join(""),
      );
      rmSync(sysDir, { recursive: true, force: true });
      return ok();
    }
    if (existsSync(sysDir)) return ok();
    if (!knownModules().includes(name)) return fail(1, `modprobe: FATAL: Module ${name} not found in directory /lib/modules/${release()}`);
    for (const s of moduleSysctls[name] ?? []) if (!existsSync(procSys(s))) writeAtomic(procSys(s), "0\n");
    if (!lines(modules).some((l) => l.split(" ")[0] === name))
      writeAtomic(modules, [...lines(modules), `${name} 16384 0 - Live 0x0000000000000000`].map((l) => `${l}\n`).join(""));
    mkdirSync(sysDir, { recursive: true });
    return ok();
  };

  const setSysctl = (name: string, value: string): HostCommandResult | undefined => {
    const file = procSys(name);
    if (!existsSync(file)) return fail(255, `sysctl: cannot stat /proc/sys/${name.replaceAll(".", "/")}: No such file or directory`);
    writeAtomic(file, `${value.trim()}\n`);
    return undefined;
  };

  const sysctl = (args: readonly string[]): HostCommandResult => {
    if (args[0] === "-p" && args[1]) {
      const out: string[] = [];
      for (const line of readFileSync(at(args[1]), "utf8").split("\n")) {
        const m = /^\s*([^#;=\s][^=]*?)\s*=\s*(.*?)\s*$/.exec(line);
        if (!m) continue;
        const problem = setSysctl(m[1]!, m[2]!);
        if (problem) return problem;
        out.push(`${m[1]} = ${m[2]}`);
      }
      return ok(out.map((l) => `${l}\n`).join(""));
    }
    if (args[0] === "-w" && args[1]) {
      const [name, ...value] = args[1].split("=");
      return setSysctl(name!, value.join("=")) ?? ok(`${name} = ${value.join("=")}\n`);
    }
    if (args[0] === "-n" && args[1]) {
      const file = procSys(args[1]);
      return existsSync(file) ? ok(readFileSync(file, "utf8")) : fail(255, `sysctl: cannot stat /proc/sys/${args[1]}`);
    }
    return fail(1, `fake sysctl: unsupported ${args.join(" ")}`);
  };

  /**
   * systemd keeps a mount unit for every mount; the test says which exist (/run/fakehost/mount-units: "<unit> <mount
   * point>" lines, the unit named by hand as systemd-escape would), and stopping one unmounts its mount point.
   */
  const stopMount = (unit: string): HostCommandResult => {
    const known = lines(at("/run/fakehost/mount-units")).map((l) => l.split(" ") as [string, string]);
    const mountPoint = known.find(([name]) => name === unit)?.[1];
    if (!mountPoint) return fail(5, `Failed to stop ${unit}: Unit ${unit} not loaded.`);
    const mountinfo = at("/proc/self/mountinfo");
    writeAtomic(
      mountinfo,
      lines(mountinfo)
        .filter((l) => l.split(" ")[4] !== mountPoint)
        .map((l) => `${l}\n`)
        .join(""),
    );
    return ok();
  };

  const systemctl = (args: readonly string[]): HostCommandResult => {
    const [verb, unit] = args;
    if (verb === "daemon-reload") return ok();
    if (!unit) return fail(1, `fake systemctl: unsupported ${args.join(" ")}`);
    if (verb === "stop" && unit.endsWith(".mount")) return stopMount(unit);
    const file = unitFile(unit);
    const active = lines(activeFile);
    switch (verb) {
      case "is-enabled":
        if (!file) return fail(1, `Failed to get unit file state for ${unit}: No such file or directory`);
        return wantsLinks(unit).length > 0 ? ok("enabled\n") : fail(1, "", "disabled\n");
      case "enable": {
        if (!file) return fail(1, `Failed to enable unit: Unit file ${unit} does not exist.`);
        const wantedBy = existsSync(at(file))
          ? (/^WantedBy=(.+)$/m.exec(readFileSync(at(file), "utf8"))?.[1]?.trim() ?? "multi-user.target")
          : "multi-user.target";
        const link = at(`/etc/systemd/system/${wantedBy}.wants/${unit}`);
        if (!existsSync(path.dirname(link))) mkdirSync(path.dirname(link), { recursive: true });
        if (wantsLinks(unit).length === 0) symlinkSync(file, link);
        return { code: 0, stdout: "", stderr: `Created symlink /etc/systemd/system/${wantedBy}.wants/${unit} → ${file}.` };
      }
      case "disable":
        for (const l of wantsLinks(unit)) rmSync(l, { force: true });
        return ok();
      case "is-active":
        return active.includes(unit) ? ok("active\n") : fail(3, "", "inactive\n");
      case "start":
        if (!file) return fail(5, `Failed to start ${unit}: Unit ${unit} not found.`);
        if (!active.includes(unit)) writeAtomic(activeFile, [...active, unit].map((u) => `${u}\n`).join(""));
        return ok();
      case "stop":
        writeAtomic(
          activeFile,
          active
            .filter((u) => u !== unit)
            .map((u) => `${u}\n`)
            .join(""),
        );
        return ok();
      default:
        return fail(1, `fake systemctl: unsupported ${verb}`);
    }
  };

  const sysext = (args: readonly string[]): HostCommandResult => {
    if (args[0] !== "refresh") return fail(1, `fake systemd-sysext: unsupported ${args.join(" ")}`);
    const images = ["/etc/extensions", "/var/lib/extensions"]
      .flatMap((d) =>
        existsSync(at(d))
          ? readdirSync(at(d))
              .filter((n) => n.endsWith(".raw"))
              .map((n) => n.slice(0, -4))
          : [],
      )
      .sort();
    writeAtomic(sysextFile, images.map((i) => `${i}\n`).join(""));
    return ok();
  };

  return (program, args) => {
    switch (program) {
      case "modprobe":
        return modprobe(args);
      case "sysctl":
        return sysctl(args);
      case "systemctl":
        return systemctl(args);
      case "systemd-sysext":
        return sysext(args);
    }
  };
}

/** Units the fake systemd has running. */
export function activeUnits(root: string): string[] {
  return lines(path.join(root, "run/fakehost/active"));
}

/**
 * The kubelet, as far as the plan's last step sees it: once kubelet.service is active it "finishes TLS bootstrap"
 * after `delayMs` and writes its client certificate. Runs in the test process, outside the agent (a killed agent does
 * not take the kubelet with it). Returns a stop function.
 */
export function startFakeKubelet(root: string, delayMs = 150): () => void {
  const pem = path.join(root, KUBELET_CERTIFICATE);
  let since: number | undefined;
  const timer = setInterval(() => {
    if (!activeUnits(root).includes("kubelet.service")) {
      since = undefined;
      return;
    }
    since ??= Date.now();
    if (Date.now() - since < delayMs || existsSync(pem) || !existsSync(path.join(root, "var/lib/kubelet"))) return;
    mkdirSync(path.dirname(pem), { recursive: true, mode: 0o755 });
    writeFileSync(pem, KUBELET_CERTIFICATE_CONTENT, { mode: 0o600 });
  }, 20);
  timer.unref();
  return () => clearInterval(timer);
}

const KUBELET_CERTIFICATE = "var/lib/kubelet/pki/kubelet-client-current.pem";
const KUBELET_CERTIFICATE_CONTENT = "fake kubelet client certificate\n";
