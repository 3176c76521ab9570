/**
 * What the node tells the service about itself (contract/node-facts.ts), read from the host under `root`. Every path
 * read is a host path under `root`, so tests describe a Flatcar or Ubuntu machine with a handful of files; the few
 * values only the kernel knows without a file (architecture, interface addresses) come from `system`.
 */
import * as os from "node:os";
import { access, readFile, stat } from "node:fs/promises";
import { constants } from "node:fs";
import * as z from "zod";
import { NodeFactsSchema, type NodeFacts } from "../../contract/node-facts.js";
import { underRoot } from "./agent-files.js";
import { isReadOnly, mountOf, parseMountinfo } from "./mountinfo.js";
import { parseOsRelease } from "./os-release.js";

export interface SystemInfo {
  hostname(): string;
  /** As os.arch(): x64, arm64, … */
  arch(): string;
  release(): string;
  cpus(): number;
  totalmem(): number;
  networkInterfaces(): NodeJS.Dict<os.NetworkInterfaceInfo[]>;
}

export const realSystem: SystemInfo = {
  hostname: () => os.hostname(),
  arch: () => os.arch(),
  release: () => os.release(),
  cpus: () => os.availableParallelism(),
  totalmem: () => os.totalmem(),
  networkInterfaces: () => os.networkInterfaces(),
};

export class FactsError extends Error {
  readonly code = "facts_unreadable";
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
    this.name = "FactsError";
  }
}

export interface FactsReport {
  facts: NodeFacts;
  /** Things left out or guessed, for the operator (a placeholder SMBIOS UUID, a missing os-release). */
  notes: string[];
}

/**
 * SMBIOS UUIDs firmware vendors ship unset or identical on every board; sending one would make unrelated machines
 * look like clones of each other.
 */
const PLACEHOLDER_UUIDS = new Set([
  "00000000-0000-0000-0000-000000000000",
  "ffffffff-ffff-ffff-ffff-ffffffffffff",
  "03000200-0400-0500-0006-000700080009",
  "00020003-0004-0005-0006-000700080009",
  "12345678-1234-5678-90ab-cddeefaabbcc",
]);

const ARCH: Record<string, NodeFacts["arch"]> = { x64: "amd64", arm64: "arm64" };

async function readText(root: string, path: string): Promise<string | undefined> {
  try {
    return await readFile(underRoot(root, path), "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR" || code === "EACCES") return undefined;
    throw error;
  }
}

async function exists(root: string, path: string): Promise<boolean> {
  try {
    await stat(underRoot(root, path));
    return true;
  } catch {
    return false;
  }
}

function clip(value: string | undefined, max: number): string | undefined {
  return value === undefined || value === "" ? undefined : value.slice(0, max);
}

/** "0-3,6,8-9" → 7 */
function countCpuList(list: string): number | undefined {
  let count = 0;
  for (const part of list.trim().split(",")) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) return undefined;
    count += m[2] === undefined ? 1 : Number(m[2]) - Number(m[1]) + 1;
  }
  return count > 0 ? count : undefined;
}

async function readOnlyUsr(root: string): Promise<boolean> {
  const mountinfo = await readText(root, "/proc/self/mountinfo");
  if (mountinfo !== undefined) {
    const mount = mountOf(parseMountinfo(mountinfo), "/usr");
    if (mount) return isReadOnly(mount);
  }
  // No mount table (a container, a test root): ask the kernel whether /usr takes writes (EROFS on a read-only mount).
  try {
    await access(underRoot(root, "/usr"), constants.W_OK);
    return false;
  } catch (error) {
    // EACCES only says this user may not write there, not that nobody can.
    return (error as NodeJS.ErrnoException).code === "EROFS";
  }
}

function addressesOf(system: SystemInfo): string[] {
  const out = new Set<string>();
  for (const infos of Object.values(system.networkInterfaces())) {
    for (const info of infos ?? []) {
      if (info.internal) continue;
      // The zone suffix of a link-local IPv6 address ("%eth0") is not part of the address.
      const address = info.address.split("%")[0]!;
      if (z.union([z.ipv4(), z.ipv6()]).safeParse(address).success) out.add(address);
    }
  }
  return [...out].slice(0, 64);
}

export async function gatherFacts(options: { root: string; system?: SystemInfo }): Promise<FactsReport> {
  const { root } = options;
  const system = options.system ?? realSystem;
  const notes: string[] = [];

  let osReleaseText = await readText(root, "/etc/os-release");
  if (osReleaseText === undefined) osReleaseText = await readText(root, "/usr/lib/os-release");
  if (osReleaseText === undefined) notes.push("no /etc/os-release or /usr/lib/os-release; reporting ID=linux as os-release(5) specifies");
  const release = parseOsRelease(osReleaseText ?? "");
  const osId = (release.get("ID") ?? "linux").toLowerCase();

  const machineIdText = await readText(root, "/etc/machine-id");
  const machineId = machineIdText?.trim().toLowerCase();
  if (machineId === undefined || machineId === "" || machineId === "uninitialized") {
    throw new FactsError(
      "machineId",
      "/etc/machine-id is missing or not initialised yet (systemd writes it on first boot); run systemd-machine-id-setup or wait for first boot to finish",
    );
  }

  let smbiosUuid = (await readText(root, "/sys/class/dmi/id/product_uuid"))?.trim().toLowerCase();
  if (smbiosUuid !== undefined && PLACEHOLDER_UUIDS.has(smbiosUuid)) {
    notes.push(`SMBIOS UUID ${smbiosUuid} is a firmware placeholder; not reported`);
    smbiosUuid = undefined;
  } else if (smbiosUuid !== undefined && !NodeFactsSchema.shape.smbiosUuid.safeParse(smbiosUuid).success) {
    notes.push(`SMBIOS UUID ${JSON.stringify(smbiosUuid.slice(0, 40))} is not an RFC 9562 UUID; not reported`);
    smbiosUuid = undefined;
  } else if (smbiosUuid === undefined) {
    notes.push("no DMI product UUID (no /sys/class/dmi/id/product_uuid, or not readable by this user)");
  }

  const arch = ARCH[system.arch()];
  if (arch === undefined) throw new FactsError("arch", `${system.arch()} is not supported; flexnode nodes are amd64 or arm64`);

  const hostname = ((await readText(root, "/proc/sys/kernel/hostname")) ?? system.hostname()).trim();
  const kernel = ((await readText(root, "/proc/sys/kernel/osrelease")) ?? system.release()).trim();
  const cpuList = await readText(root, "/sys/devices/system/cpu/online");
  const cpus = (cpuList !== undefined ? countCpuList(cpuList) : undefined) ?? system.cpus();
  const memKb = /^MemTotal:\s+(\d+)\s+kB$/m.exec((await readText(root, "/proc/meminfo")) ?? "")?.[1];
  const memoryBytes = memKb !== undefined ? Number(memKb) * 1024 : system.totalmem();

  const ostree = await exists(root, "/run/ostree-booted");
  const idLike = (release.get("ID_LIKE") ?? "").toLowerCase().split(/\s+/);
  const immutable = {
    readOnlyUsr: await readOnlyUsr(root),
    ostree,
    flatcar: osId === "flatcar" || idLike.includes("flatcar"),
    kairos: osId.startsWith("kairos") || (await exists(root, "/etc/kairos-release")) || [...release.keys()].some((k) => k.startsWith("KAIROS_")),
    bootc: (await exists(root, "/usr/lib/bootc")) || (ostree && (await exists(root, "/sysroot/ostree/bootc"))),
  };

  const candidate = {
    hostname,
    machineId,
    ...(smbiosUuid !== undefined ? { smbiosUuid } : {}),
    osRelease: {
      id: osId.slice(0, 64),
      ...optional("versionId", clip(release.get("VERSION_ID"), 64)),
      ...optional("variantId", clip(release.get("VARIANT_ID"), 64)),
      ...optional("prettyName", clip(release.get("PRETTY_NAME"), 256)),
    },
    arch,
    kernel: kernel.slice(0, 128),
    cpus,
    memoryBytes,
    addresses: addressesOf(system),
    immutable,
  };
  const parsed = NodeFactsSchema.safeParse(candidate);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new FactsError(issue.path.join(".") || "facts", `${issue.message} (read ${JSON.stringify(pick(candidate, issue.path))})`);
  }
  return { facts: parsed.data, notes };
}

function optional<K extends string>(key: K, value: string | undefined): { [P in K]?: string } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: string };
}

function pick(value: unknown, path: readonly PropertyKey[]): unknown {
  let at = value;
  for (const key of path) at = (at as Record<PropertyKey, unknown> | undefined)?.[key];
  return at;
}
