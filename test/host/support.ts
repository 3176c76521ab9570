/**
 * Helpers the real-host tier's tests share: waiting on the machine with a bound, reading units, hashing trees.
 */
import { createHash } from "node:crypto";
import { treeSnapshot, type TreeSnapshot } from "../sandbox/sandbox-root.js";
import type { HostMachine } from "./machine.js";

/**
 * What the tree comparison leaves out, each because the agent never writes it and the OS changes it by itself:
 * /usr (hashed on its own: the cached root's read-only tree), the agent's own records (/var/lib/flexnode), mount
 * points of the API and runtime file systems (empty on disk), the journal and wtmp (every boot and service start
 * writes them), and /var/tmp, where systemd makes a new private directory for logind on every boot.
 */
export const NOT_COMPARED = ["usr", "var/lib/flexnode", "proc", "sys", "dev", "run", "tmp", "var/log/journal", "var/log/wtmp", "var/tmp"];

export function machineTree(machine: HostMachine): Promise<TreeSnapshot> {
  return treeSnapshot(machine.rootfs, NOT_COMPARED);
}

/** One digest over every path, mode, owner and content under `dir` (the cached root's /usr). */
export async function treeHash(dir: string): Promise<string> {
  return createHash("sha256")
    .update((await treeSnapshot(dir, [])).entries.join("\n"))
    .digest("hex");
}

/** `systemctl show` properties of a unit inside the machine. */
export async function unitProps(machine: HostMachine, unit: string, props: readonly string[]): Promise<Record<string, string>> {
  const { stdout } = await machine.exec(["systemctl", "show", unit, ...props.flatMap((p) => ["-p", p])], { allowFailure: true });
  return Object.fromEntries(
    stdout
      .split("\n")
      .filter((l) => l.includes("="))
      .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
  );
}

/** Polls `probe` until it returns a value (not undefined), at most `timeoutMs`; then fails naming `what`. */
export async function waitUntil<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>, intervalMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline)
      throw new Error(`${what}: not within ${timeoutMs} ms${last ? ` (last error: ${last instanceof Error ? last.message : String(last)})` : ""}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Extensions merged into /usr, from `systemd-sysext status` (systemd 252 prints one name per line after /usr's). */
export async function mergedExtensions(machine: HostMachine): Promise<string[]> {
  const { stdout } = await machine.exec(["systemd-sysext", "status", "--no-legend"], { allowFailure: true });
  const names: string[] = [];
  let inUsr = false;
  for (const line of stdout.split("\n")) {
    const fields = line.trim().split(/\s+/);
    if (line.startsWith("/")) {
      inUsr = fields[0] === "/usr";
      if (inUsr && fields[1] && fields[1] !== "none") names.push(fields[1]);
    } else if (inUsr && fields[0]) names.push(fields[0]);
  }
  return names.sort();
}

/** A unit's journal (for the agent: its `run` output), of every boot or of this one. */
export async function agentJournal(machine: HostMachine, unit: string, options: { thisBoot?: boolean } = {}): Promise<string[]> {
  const { stdout } = await machine.exec(["journalctl", "--no-pager", "-o", "cat", ...(options.thisBoot ? ["-b"] : []), "-u", unit], { allowFailure: true });
  return stdout.split("\n");
}

/** `promise`, or a failure naming `what` after `timeoutMs`. */
export async function within<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${timeoutMs} ms`)), timeoutMs))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
