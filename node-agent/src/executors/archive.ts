/**
 * tar.gz artifacts, read with the `tar` package (no shell, no host tar): a first pass lists every entry, hashes its
 * content and refuses anything that could land outside the destination (absolute paths, `..`, links pointing out or
 * written through, devices, setuid bits); only then is the archive unpacked, limited to exactly the entries listed.
 */
import { createHash } from "node:crypto";
import * as path from "node:path";
import * as tar from "tar";
import { UnsafeArchiveError } from "../step-errors.js";

export interface ArchiveEntry {
  /** Path relative to the destination, normalised (no "./", no trailing slash). */
  rel: string;
  kind: "file" | "dir" | "symlink";
  sha256?: string;
  /** Mode after unpacking (the entry's mode under umask 022); absent for directories the archive only implies. */
  mode?: number;
  linkTarget?: string;
}

export const UNPACK_UMASK = 0o022;
const MAX_ENTRIES = 20_000;

function normalise(raw: string, what: string): string {
  let p = raw;
  while (p.startsWith("./")) p = p.slice(2);
  while (p.endsWith("/")) p = p.slice(0, -1);
  if (p === "" || p === ".") return "";
  if (p.startsWith("/")) throw new UnsafeArchiveError(`${what} ${JSON.stringify(raw)} is absolute`);
  const segments = p.split("/");
  if (segments.some((s) => s === ".." || s === "." || s === "")) throw new UnsafeArchiveError(`${what} ${JSON.stringify(raw)} is not a plain relative path`);
  return p;
}

/** Lists and checks every entry; throws UnsafeArchiveError for the first one that is not safe to unpack. */
export async function inspectArchive(file: string): Promise<ArchiveEntry[]> {
  const entries = new Map<string, ArchiveEntry>();
  const hardLinks: { rel: string; target: string }[] = [];
  const pending: Promise<void>[] = [];
  let problem: Error | undefined;
  await tar.t({
    file,
    onReadEntry: (entry) => {
      try {
        if (problem) return;
        if (entries.size >= MAX_ENTRIES) throw new UnsafeArchiveError(`archive has more than ${MAX_ENTRIES} entries`);
        const rel = normalise(entry.path, "entry");
        if (rel === "") return;
        const earlier = entries.get(rel);
        // A directory named after its contents (implied earlier) is the one entry allowed to repeat a path.
        if (earlier && !(entry.type === "Directory" && earlier.kind === "dir" && earlier.mode === undefined)) throw new UnsafeArchiveError(`entry ${rel} appears twice`);
        const segments = rel.split("/");
        for (let i = 1; i < segments.length; i++) {
          const ancestor = segments.slice(0, i).join("/");
          const seen = entries.get(ancestor);
          if (seen && seen.kind !== "dir") throw new UnsafeArchiveError(`entry ${rel} would be written through ${seen.kind} ${ancestor}`);
          if (!seen) entries.set(ancestor, { rel: ancestor, kind: "dir" });
        }
        const mode = entry.mode ?? 0o644;
        if (mode & 0o7000) throw new UnsafeArchiveError(`entry ${rel} has setuid, setgid or sticky bits (${mode.toString(8)})`);
        const unpackedMode = mode & 0o777 & ~UNPACK_UMASK;
        switch (entry.type) {
          case "File":
          case "OldFile":
          case "ContiguousFile": {
            const hash = createHash("sha256");
            const item: ArchiveEntry = { rel, kind: "file", mode: unpackedMode };
            entries.set(rel, item);
            entry.on("data", (c: Buffer) => hash.update(c));
            pending.push(new Promise<void>((resolve) => entry.on("end", () => resolve())).then(() => void (item.sha256 = hash.digest("hex"))));
            break;
          }
          case "Directory":
            entries.set(rel, { rel, kind: "dir", mode: unpackedMode });
            break;
          case "SymbolicLink": {
            const target = entry.linkpath ?? "";
            if (target === "" || target.startsWith("/")) throw new UnsafeArchiveError(`symlink ${rel} points to ${JSON.stringify(target)}, outside the destination`);
            const resolved = path.posix.normalize(path.posix.join(path.posix.dirname(rel), target));
            if (resolved === ".." || resolved.startsWith("../")) throw new UnsafeArchiveError(`symlink ${rel} points to ${target}, outside the destination`);
            entries.set(rel, { rel, kind: "symlink", linkTarget: target });
            break;
          }
          case "Link":
            hardLinks.push({ rel, target: normalise(entry.linkpath ?? "", `hard link ${rel} target`) });
            entries.set(rel, { rel, kind: "file", mode: unpackedMode });
            break;
          default:
            throw new UnsafeArchiveError(`entry ${rel} is a ${entry.type}; only files, directories and links are unpacked`);
        }
      } catch (e) {
        problem ??= e as Error;
      }
    },
  });
  await Promise.all(pending);
  if (problem) throw problem;
  for (const link of hardLinks) {
    const target = entries.get(link.target);
    if (target?.kind !== "file" || target.sha256 === undefined) throw new UnsafeArchiveError(`hard link ${link.rel} points to ${link.target}, which is not a file earlier in the archive`);
    entries.get(link.rel)!.sha256 = target.sha256;
  }
  return [...entries.values()];
}

/** Unpacks exactly the inspected entries into `cwd` (owner: this process; modes: the entries' under umask 022). */
export async function unpackArchive(file: string, cwd: string, entries: readonly ArchiveEntry[]): Promise<void> {
  const allowed = new Set(entries.map((e) => e.rel));
  await tar.x({
    file,
    cwd,
    strict: true,
    preserveOwner: false,
    chmod: true,
    processUmask: UNPACK_UMASK,
    filter: (p) => allowed.has(normalise(p, "entry")),
  });
}
