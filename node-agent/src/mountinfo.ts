/** /proc/self/mountinfo (proc(5)): which mount a path lives on and whether it is read-only. */

export interface MountEntry {
  mountPoint: string;
  /** Per-mount options (field 6) and per-superblock options (after the " - " separator). */
  options: string[];
  superOptions: string[];
  fsType: string;
}

/** Mount points escape space, tab, newline and backslash as octal (\040 …). */
function unescapeOctal(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

export function parseMountinfo(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    const [left, right] = line.split(" - ");
    if (left === undefined || right === undefined) continue;
    const fields = left.split(" ");
    const mountPoint = fields[4];
    const options = fields[5];
    const [fsType, , superOptions] = right.split(" ");
    if (mountPoint === undefined || options === undefined || fsType === undefined) continue;
    entries.push({ mountPoint: unescapeOctal(mountPoint), options: options.split(","), superOptions: (superOptions ?? "").split(","), fsType });
  }
  return entries;
}

function covers(mountPoint: string, path: string): boolean {
  if (mountPoint === "/") return true;
  return path === mountPoint || path.startsWith(`${mountPoint}/`);
}

/** The mount `path` is on: the deepest covering mount point, the later one when stacked (it hides the earlier). */
export function mountOf(entries: readonly MountEntry[], path: string): MountEntry | undefined {
  let best: MountEntry | undefined;
  for (const entry of entries) {
    if (!covers(entry.mountPoint, path)) continue;
    if (!best || entry.mountPoint.length >= best.mountPoint.length) best = entry;
  }
  return best;
}

export function isReadOnly(entry: MountEntry): boolean {
  return entry.options.includes("ro") || entry.superOptions.includes("ro");
}
