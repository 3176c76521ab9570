/**
 * The directories systemd creates for a service when it starts: `StateDirectory=` (/var/lib), `CacheDirectory=`
 * (/var/cache) and `LogsDirectory=` (/var/log), systemd.exec(5). A unit the agent starts fills them (containerd its
 * images and snapshots, the kubelet its pods), so when the agent starts a unit whose directory the plan owns (absent
 * before, or created by the agent), it records it as the unit's ("unit-directory"), and reset removes it whole after
 * stopping the unit. Found on the real-host tier: a started containerd left /var/lib/containerd behind after reset.
 *
 * Read from the unit's files, as systemd would load them (no extra host command): the fragment from the first unit
 * directory that has it (/etc, /run, /usr/local/lib, /usr/lib; a sysext image's units are under /usr/lib once merged),
 * then its drop-ins (`<unit>.d/*.conf`, a file in a higher-priority directory hiding a lower one of the same name)
 * in file-name order. An empty assignment resets the list, as in systemd. Templates, aliases and the drop-ins of a
 * unit's type (`service.d/`) are not followed; a masked unit (a link to /dev/null) declares nothing.
 */
import { readdir, readFile, readlink } from "node:fs/promises";
import * as path from "node:path";
import { lstatIfExists } from "../fs-atomic.js";
import { fsPathOf } from "../paths.js";

const UNIT_DIRS = ["/etc/systemd/system", "/run/systemd/system", "/usr/local/lib/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"];
const BASES: Record<string, string> = { StateDirectory: "/var/lib", CacheDirectory: "/var/cache", LogsDirectory: "/var/log" };

async function readText(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, "utf8");
  } catch {
    return undefined;
  }
}

/** The unit's fragment and drop-ins, in the order systemd applies them. */
async function unitFiles(root: string, unit: string): Promise<string[]> {
  let fragment: string | undefined;
  for (const dir of UNIT_DIRS) {
    const fsPath = fsPathOf(root, `${dir}/${unit}`);
    const stats = await lstatIfExists(fsPath);
    if (!stats) continue;
    if (stats.isSymbolicLink() && (await readlink(fsPath)) === "/dev/null") return [];
    fragment = fsPath;
    break;
  }
  if (!fragment) return [];
  const dropIns = new Map<string, string>();
  for (const dir of [...UNIT_DIRS].reverse()) {
    const names = await readdir(fsPathOf(root, `${dir}/${unit}.d`)).catch(() => [] as string[]);
    for (const name of names.filter((n) => n.endsWith(".conf"))) dropIns.set(name, fsPathOf(root, `${dir}/${unit}.d/${name}`));
  }
  return [fragment, ...[...dropIns.keys()].sort().map((n) => dropIns.get(n)!)];
}

/** Absolute host paths of the directories `unit` declares, from its files under `root`. */
export async function declaredDirectories(root: string, unit: string): Promise<string[]> {
  const declared = new Map<string, string[]>(Object.keys(BASES).map((k) => [k, []]));
  for (const file of await unitFiles(root, unit)) {
    const text = await readText(file);
    if (text === undefined) continue;
    let section = "";
    for (const raw of text.replace(/\\\n/g, " ").split("\n")) {
      const line = raw.trim();
      if (line.startsWith("[")) {
        section = line;
        continue;
      }
      if (section !== "[Service]") continue;
      const m = /^(StateDirectory|CacheDirectory|LogsDirectory)\s*=\s*(.*)$/.exec(line);
      if (!m) continue;
      const values = m[2]!.split(/\s+/).filter(Boolean);
      // An empty assignment resets the list; otherwise entries accumulate. `name:link` (systemd >= 250) creates name.
      declared.set(m[1]!, values.length === 0 ? [] : [...declared.get(m[1]!)!, ...values.map((v) => v.split(":")[0]!)]);
    }
  }
  const paths: string[] = [];
  for (const [kind, names] of declared) {
    for (const name of names) {
      const clean = path.posix.normalize(name);
      // systemd refuses absolute and climbing names; so does the agent.
      if (clean.startsWith("/") || clean.startsWith("..") || clean === ".") continue;
      paths.push(`${BASES[kind]}/${clean}`);
    }
  }
  return [...new Set(paths)];
}

/**
 * For each declared directory, its top-most component below the base that the plan owns: one that does not exist yet
 * (the start creates it) or one the agent itself created earlier in the plan (`createdByAgent`; e.g. /var/lib/kubelet,
 * made to hold the bootstrap kubeconfig before the kubelet starts). A component that was on the host before is the
 * host's: the walk goes below it.
 */
export async function ownedDeclaredDirectories(root: string, unit: string, createdByAgent: (hostPath: string) => boolean): Promise<string[]> {
  const owned: string[] = [];
  for (const dir of await declaredDirectories(root, unit)) {
    const base = Object.values(BASES).find((b) => dir.startsWith(`${b}/`))!;
    const parts = dir.slice(base.length + 1).split("/");
    for (let i = 1; i <= parts.length; i++) {
      const candidate = `${base}/${parts.slice(0, i).join("/")}`;
      if (createdByAgent(candidate) || !(await lstatIfExists(fsPathOf(root, candidate)))) {
        owned.push(candidate);
        break;
      }
    }
  }
  return [...new Set(owned)];
}
