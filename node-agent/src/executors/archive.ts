/**
 * tar.gz artifacts, read with the `tar` package (no shell, no host tar): a first pass lists every entry, hashes its
 * content and refuses anything that could land outside the destination (absolute paths, `..`, links pointing out or
 * written through, devices, setuid bits) or unpack more than the agent's caps allow (bytes, entries); only then is
 * the archive unpacked, limited to exactly the entries listed.
 *
 * A symlink is judged by where it finally leads, not by its own text: every link on the way is followed, the
 * archive's own entries first and then what is already in the destination, so `a -> b`, `b -> c/..`, `c -> ..`
 * (each harmless alone) is refused as the chain that leaves the destination.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { readlink } from "node:fs/promises";
import * as path from "node:path";
import * as tar from "tar";
import { lstatIfExists } from "../fs-atomic.js";
import { isUnder } from "../paths.js";
import type { ArchiveLimits } from "../ports.js";
import { ArchiveTooLargeError, UnsafeArchiveError } from "../step-errors.js";

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
/** What one archive may unpack unless agent.json's `archive` says otherwise. */
export const DEFAULT_ARCHIVE_LIMITS: Required<ArchiveLimits> = { maxUnpackedBytes: 4 * 1024 ** 3, maxEntries: 20_000 };
const MAX_LINK_HOPS = 40;

export interface InspectOptions {
  /** Where the archive will be unpacked, to follow links through what is already there. */
  destination?: { hostDir: string; fsDir: string };
  limits?: ArchiveLimits;
}

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

/**
 * Lists and checks every entry; throws UnsafeArchiveError for the first one that is not safe to unpack, and
 * ArchiveTooLargeError (reading stops there) as soon as the entries or their bytes pass the caps.
 */
export async function inspectArchive(file: string, options: InspectOptions = {}): Promise<ArchiveEntry[]> {
  const { maxUnpackedBytes, maxEntries } = { ...DEFAULT_ARCHIVE_LIMITS, ...options.limits };
  const entries = new Map<string, ArchiveEntry>();
  const hardLinks: { rel: string; target: string }[] = [];
  const pending: Promise<void>[] = [];
  let problem: Error | undefined;
  let unpackedBytes = 0;
  const parser = tar.t({
    onReadEntry: (entry) => {
      try {
        if (problem) return;
        if (entries.size >= maxEntries)
          throw new ArchiveTooLargeError(`archive has more than ${maxEntries} entries (the agent's cap, agent.json archive.maxEntries)`);
        const rel = normalise(entry.path, "entry");
        if (rel === "") return;
        const earlier = entries.get(rel);
        // A directory named after its contents (implied earlier) is the one entry allowed to repeat a path.
        if (earlier && !(entry.type === "Directory" && earlier.kind === "dir" && earlier.mode === undefined))
          throw new UnsafeArchiveError(`entry ${rel} appears twice`);
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
            unpackedBytes += entry.size;
            if (unpackedBytes > maxUnpackedBytes) {
              throw new ArchiveTooLargeError(
                `archive unpacks to more than ${maxUnpackedBytes} bytes (the agent's cap, agent.json archive.maxUnpackedMiB); refused at ${rel}`,
              );
            }
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
            if (target === "" || target.startsWith("/"))
              throw new UnsafeArchiveError(`symlink ${rel} points to ${JSON.stringify(target)}, outside the destination`);
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
        // Stop reading: an archive past its caps may be a decompression bomb.
        parser.abort(problem);
      }
    },
  });
  await new Promise<void>((resolve, reject) => {
    const input = createReadStream(file);
    input.on("error", reject);
    parser.on("error", (error: Error) => {
      input.destroy();
      reject(problem ?? error);
    });
    parser.on("end", () => resolve());
    input.pipe(parser);
  });
  if (problem) throw problem;
  await Promise.all(pending);
  for (const link of hardLinks) {
    const target = entries.get(link.target);
    if (target?.kind !== "file" || target.sha256 === undefined)
      throw new UnsafeArchiveError(`hard link ${link.rel} points to ${link.target}, which is not a file earlier in the archive`);
    entries.get(link.rel)!.sha256 = target.sha256;
  }
  for (const entry of entries.values()) if (entry.kind === "symlink") await checkLinkStaysInside(entry.rel, entry.linkTarget!, entries, options.destination);
  return [...entries.values()];
}

/**
 * Follows `rel -> target` component by component, through every link on the way (the archive's, then those already
 * in the destination), at most MAX_LINK_HOPS of them; throws UnsafeArchiveError once the path leaves the destination.
 */
async function checkLinkStaysInside(
  rel: string,
  target: string,
  entries: ReadonlyMap<string, ArchiveEntry>,
  destination: InspectOptions["destination"],
): Promise<void> {
  const outside = (how: string) => new UnsafeArchiveError(`symlink ${rel} -> ${target} ${how}, outside the destination`);
  let resolved = rel.split("/").slice(0, -1);
  const pending = target.split("/");
  let hops = 0;
  while (pending.length > 0) {
    const component = pending.shift()!;
    if (component === "" || component === ".") continue;
    if (component === "..") {
      if (resolved.length === 0) throw outside("climbs above it");
      resolved.pop();
      continue;
    }
    const candidate = [...resolved, component];
    const key = candidate.join("/");
    const entry = entries.get(key);
    let link: string | undefined;
    if (entry) link = entry.kind === "symlink" ? entry.linkTarget : undefined;
    else if (destination) {
      const onHost = path.join(destination.fsDir, key);
      if ((await lstatIfExists(onHost))?.isSymbolicLink()) link = await readlink(onHost);
    }
    if (link === undefined) {
      resolved = candidate;
      continue;
    }
    if (++hops > MAX_LINK_HOPS) throw new UnsafeArchiveError(`symlink ${rel} -> ${target}: more than ${MAX_LINK_HOPS} links to follow`);
    if (link.startsWith("/")) {
      // Only a link already on the host can be absolute (the archive's own are refused); it is a host path.
      if (!destination || link.split("/").includes("..") || !isUnder(path.posix.normalize(link), destination.hostDir))
        throw outside(`leads through ${key} -> ${link}`);
      resolved = [];
      pending.unshift(...path.posix.relative(destination.hostDir, path.posix.normalize(link)).split("/"));
      continue;
    }
    pending.unshift(...link.split("/"));
  }
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
