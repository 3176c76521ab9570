/**
 * A fingerprint of a directory tree: every path with its type, mode, uid/gid, content hash or symlink target. Two
 * trees with the same hash are the same byte for byte as far as a host cares (times are left out).
 */
import { createHash } from "node:crypto";
import { lstat, readdir, readFile, readlink } from "node:fs/promises";
import * as path from "node:path";

export async function treeListing(root: string): Promise<string[]> {
  const lines: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    const names = (await readdir(dir)).sort();
    for (const name of names) {
      const full = path.join(dir, name);
      const rel = path.relative(root, full);
      const s = await lstat(full);
      const meta = `${(s.mode & 0o7777).toString(8)} ${s.uid}:${s.gid}`;
      if (s.isSymbolicLink()) lines.push(`${rel} link ${meta} -> ${await readlink(full)}`);
      else if (s.isDirectory()) {
        lines.push(`${rel} dir ${meta}`);
        await walk(full);
      } else if (s.isFile())
        lines.push(
          `${rel} file ${meta} ${createHash("sha256")
            .update(await readFile(full))
            .digest("hex")}`,
        );
      else lines.push(`${rel} other ${meta}`);
    }
  };
  await walk(root);
  return lines;
}

export async function treeHash(root: string): Promise<string> {
  return createHash("sha256")
    .update((await treeListing(root)).join("\n"))
    .digest("hex");
}

/** Lines only in `before` (-) or only in `after` (+), for a readable assertion failure. */
export function treeDiff(before: readonly string[], after: readonly string[]): string[] {
  const a = new Set(before);
  const b = new Set(after);
  return [...before.filter((l) => !b.has(l)).map((l) => `- ${l}`), ...after.filter((l) => !a.has(l)).map((l) => `+ ${l}`)];
}
