/**
 * `preflight` (CLI command and step kind): read-only checks that the host can become a node. Under a sandbox root the
 * host files (/proc, /sys, /usr…) are read below that root; the port and TLS checks are real network operations.
 *
 * The clock check needs a time the service vouches for: as a step, the verified envelope's `issuedAt` (run-step.ts
 * passes it in `clockReference`). Run from the CLI there is none, and the check says it was not measured: a node's
 * clock compared with itself proves nothing.
 */
import { access, constants, readFile, statfs } from "node:fs/promises";
import { createServer } from "node:net";
import { release } from "node:os";
import { connect as tlsConnect, rootCertificates } from "node:tls";
import { PREFLIGHT_CHECKS } from "../../contract/step-params.js";
import { lstatIfExists } from "./fs-atomic.js";
import { fsPathOf } from "./paths.js";
import type { PreflightCheckResult, PreflightOptions, PreflightReport, RunPreflight } from "./ports.js";

type Check = (o: PreflightRunOptions) => Promise<Omit<PreflightCheckResult, "name">>;

export const KUBELET_PORT = 10250;
export const REQUIRED_MODULES = ["overlay", "br_netfilter"] as const;
const GiB = 1024 ** 3;
export const MIN_VAR_FREE_BYTES = 2 * GiB;
export const WARN_VAR_FREE_BYTES = 8 * GiB;
/** No genuine clock reads earlier than this agent's release; such a clock breaks every TLS handshake. */
const EARLIEST_PLAUSIBLE = Date.parse("2025-01-01T00:00:00Z");
/**
 * How far this node's clock may be from the service's. The agent verifies envelopes with 60 s of skew
 * (envelope-handling.ts) and most steps are valid for 60 s after they are issued, so a node outside this range has its
 * envelopes refused or dead-lettered as expired; half the verification skew leaves room for drift during onboarding.
 */
export const MAX_CLOCK_SKEW_MS = 30_000;
/**
 * The measure is one-sided. The node's clock is read when the step starts, against the service's clock when it signed
 * the envelope, so the measured offset is the node's skew plus the envelope's delivery time (never negative, small
 * while the agent is connected, but up to the step's 120 s of validity when the agent started after the saga sent it).
 * A node measured N s behind is at least N s behind: the check fails. One measured N s ahead may be on time and merely
 * late to read its queue, so that side only warns past this allowance; a clock that is truly ahead shows later, when a
 * step's envelope has expired by the node's clock and the agent answers it clock_skew.
 */
export const CLOCK_DELIVERY_ALLOWANCE_MS = 30_000;

/** A time the service vouches for, and what this node's clock read when it arrived. */
export interface ClockReference {
  /** By the service's clock: the verified step envelope's issuedAt. */
  serviceTime: Date;
  /** By this node's clock, when the step started. */
  nodeTime: Date;
  /** What `serviceTime` is, for the check's detail. */
  source: string;
}

/** PreflightOptions (ports.ts) plus the clock reference, which only a preflight run from a verified envelope has. */
export type PreflightRunOptions = PreflightOptions & { clockReference?: ClockReference };

const hostFile = (o: PreflightRunOptions, p: string) => fsPathOf(o.root, p);

async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, "utf8");
  } catch {
    return undefined;
  }
}

const checks: Record<(typeof PREFLIGHT_CHECKS)[number], Check> = {
  async root(o) {
    if (o.root !== "/") return { status: "pass", detail: `sandbox root ${o.root}: effective uid not required` };
    const euid = process.geteuid?.();
    return euid === 0
      ? { status: "pass", detail: "running as root" }
      : { status: "fail", detail: `running as uid ${String(euid)}; the agent must run as root` };
  },

  async "cgroup-v2"(o) {
    const controllers = await readIfExists(hostFile(o, "/sys/fs/cgroup/cgroup.controllers"));
    if (controllers === undefined)
      return { status: "fail", detail: "cgroup v2 (unified hierarchy) is not mounted at /sys/fs/cgroup; kubelet needs it with the systemd cgroup driver" };
    const list = controllers.trim().split(/\s+/).filter(Boolean);
    const missing = ["cpu", "memory", "pids"].filter((c) => !list.includes(c));
    if (missing.length > 0) return { status: "warn", detail: `cgroup v2 without controllers ${missing.join(", ")}` };
    return { status: "pass", detail: `cgroup v2 with ${list.join(" ")}` };
  },

  async "swap-off"(o) {
    const swaps = await readIfExists(hostFile(o, "/proc/swaps"));
    if (swaps === undefined) return { status: "warn", detail: "cannot read /proc/swaps" };
    const active = swaps
      .split("\n")
      .slice(1)
      .map((l) => l.trim().split(/\s+/)[0])
      .filter((d): d is string => Boolean(d));
    return active.length === 0
      ? { status: "pass", detail: "no active swap" }
      : { status: "fail", detail: `swap is active on ${active.join(", ")}; kubelet refuses to run with swap by default` };
  },

  async "kernel-modules"(o) {
    const loadedList = (await readIfExists(hostFile(o, "/proc/modules")))?.split("\n").map((l) => l.split(" ")[0]) ?? [];
    const kernel = release();
    const indexes = await Promise.all(
      ["/lib/modules", "/usr/lib/modules"].flatMap((dir) => ["modules.dep", "modules.builtin"].map((f) => readIfExists(hostFile(o, `${dir}/${kernel}/${f}`)))),
    );
    const known = indexes.filter((t): t is string => t !== undefined).join("\n");
    const report: string[] = [];
    const missing: string[] = [];
    for (const m of REQUIRED_MODULES) {
      const sysName = m.replaceAll("-", "_");
      if (loadedList.includes(sysName) || (await lstatIfExists(hostFile(o, `/sys/module/${sysName}`)))) report.push(`${m} loaded`);
      else if (new RegExp(`(^|/)${m.replaceAll(/[-_]/g, "[-_]")}\\.ko`, "m").test(known)) report.push(`${m} loadable`);
      else missing.push(m);
    }
    if (missing.length > 0)
      return { status: "fail", detail: `kernel modules not available for ${kernel}: ${missing.join(", ")}${report.length ? `; ${report.join(", ")}` : ""}` };
    return { status: "pass", detail: report.join(", ") };
  },

  async ports() {
    return new Promise((resolve) => {
      const server = createServer();
      server.once("error", (e: NodeJS.ErrnoException) =>
        resolve(
          e.code === "EADDRINUSE"
            ? { status: "fail", detail: `port ${KUBELET_PORT} is in use; kubelet listens on it` }
            : { status: "warn", detail: `cannot test port ${KUBELET_PORT}: ${e.message}` },
        ),
      );
      server.listen({ host: "127.0.0.1", port: KUBELET_PORT, exclusive: true }, () =>
        server.close(() => resolve({ status: "pass", detail: `port ${KUBELET_PORT} is free` })),
      );
    });
  },

  async "var-free-space"(o) {
    const s = await statfs(hostFile(o, "/var"));
    const free = s.bavail * s.bsize;
    const gib = (free / GiB).toFixed(1);
    if (free < MIN_VAR_FREE_BYTES) return { status: "fail", detail: `${gib} GiB free in /var; at least ${MIN_VAR_FREE_BYTES / GiB} GiB needed` };
    if (free < WARN_VAR_FREE_BYTES)
      return { status: "warn", detail: `${gib} GiB free in /var; images will soon fill it (${WARN_VAR_FREE_BYTES / GiB} GiB recommended)` };
    return { status: "pass", detail: `${gib} GiB free in /var` };
  },

  async clock(o) {
    const now = o.now().getTime();
    if (!Number.isFinite(now) || now < EARLIEST_PLAUSIBLE)
      return { status: "fail", detail: `clock reads ${new Date(now).toISOString()}, before this agent was released; fix time sync first` };
    const ref = o.clockReference;
    if (!ref)
      return {
        status: "skipped",
        detail: `not measured: no time the service vouches for here (clock reads ${new Date(now).toISOString()}); the preflight step measures it against its envelope`,
      };
    const offset = ref.nodeTime.getTime() - ref.serviceTime.getTime();
    const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
    const measured = `${ref.source} is ${ref.serviceTime.toISOString()}, this node's clock read ${ref.nodeTime.toISOString()}`;
    if (offset < -MAX_CLOCK_SKEW_MS)
      return {
        status: "fail",
        detail: `clock is at least ${seconds(-offset)} behind the service's (more than ${seconds(MAX_CLOCK_SKEW_MS)}): ${measured}; fix time sync on this node`,
      };
    if (offset > MAX_CLOCK_SKEW_MS + CLOCK_DELIVERY_ALLOWANCE_MS)
      return {
        status: "warn",
        detail: `clock is up to ${seconds(offset)} ahead of the service's, or this step waited that long in the queue (allowed ${seconds(MAX_CLOCK_SKEW_MS)} plus ${seconds(CLOCK_DELIVERY_ALLOWANCE_MS)} for delivery): ${measured}; check time sync on this node`,
      };
    return {
      status: "pass",
      detail: `clock within ${seconds(MAX_CLOCK_SKEW_MS)} of the service's: offset ${offset >= 0 ? "+" : "-"}${seconds(Math.abs(offset))} against ${ref.source}`,
    };
  },

  async "api-server-reachable"(o) {
    if (!o.apiServer) return { status: "skipped", detail: "no API server given" };
    const url = new URL(o.apiServer);
    const port = Number(url.port || 443);
    const host = url.hostname.replace(/^\[|\]$/g, "");
    return new Promise((resolve) => {
      // The cluster CA arrives later with the bootstrap kubeconfig, so this proves reachability, not the certificate.
      const socket = tlsConnect({
        host,
        port,
        servername: /^[\d.:]+$/.test(host) ? undefined : host,
        rejectUnauthorized: false,
        ca: o.ca ? [...rootCertificates, o.ca] : undefined,
        timeout: 10_000,
      });
      const done = (r: Omit<PreflightCheckResult, "name">) => {
        socket.destroy();
        resolve(r);
      };
      socket.once("secureConnect", () =>
        done({
          status: "pass",
          detail: `TLS handshake with ${host}:${port} (${socket.authorized ? "certificate trusted" : `certificate not verified here: ${String(socket.authorizationError)}`})`,
        }),
      );
      socket.once("timeout", () => done({ status: "fail", detail: `no TLS handshake with ${host}:${port} within 10 s` }));
      socket.once("error", (e) => done({ status: "fail", detail: `cannot reach ${host}:${port}: ${e.message}` }));
    });
  },

  async "usr-writable"(o) {
    let writable = true;
    let why = "";
    try {
      await access(hostFile(o, "/usr"), constants.W_OK);
    } catch (e) {
      writable = false;
      why = (e as NodeJS.ErrnoException).code ?? "not writable";
    }
    const seen = writable ? "/usr is writable" : `/usr is read-only (${why})`;
    if (o.expectImmutable === undefined) return { status: "pass", detail: seen };
    if (o.expectImmutable === !writable) return { status: "pass", detail: `${seen}, as expected for ${o.expectImmutable ? "an immutable" : "a mutable"} host` };
    return {
      status: "warn",
      detail: `${seen}, but the plan is for ${o.expectImmutable ? "an immutable host (sysext images)" : "a mutable host (/opt)"}; it still works, report the facts mismatch`,
    };
  },
};

/** The shared port (ports.ts: the CLI passes plain PreflightOptions), plus the clock reference a step has. */
export const runPreflight = (async (options: PreflightRunOptions): Promise<PreflightReport> => {
  const names = options.checks ?? PREFLIGHT_CHECKS;
  const results: PreflightCheckResult[] = [];
  for (const name of names) {
    const check = (checks as Record<string, Check | undefined>)[name];
    let result: Omit<PreflightCheckResult, "name">;
    if (!check) result = { status: "fail", detail: `unknown check ${name}` };
    else {
      try {
        result = await check(options);
      } catch (e) {
        result = { status: "fail", detail: (e as Error).message };
      }
    }
    if (result.status === "fail" && options.ignore?.includes(name)) result = { status: "warn", detail: `${result.detail} (ignored)` };
    results.push({ name, ...result });
  }
  return { ok: results.every((r) => r.status !== "fail"), checks: results };
}) satisfies RunPreflight;
