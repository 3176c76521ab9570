/**
 * Hand-built tar.gz archives with entries `tar.c` would refuse to write (absolute paths, `..`, links out, devices,
 * setuid bits), to show the agent refuses them before placing anything. Headers come from the `tar` package.
 */
import { gzipSync } from "node:zlib";
import { Header, type HeaderData } from "tar";

export interface CraftedEntry {
  path: string;
  type?: HeaderData["type"];
  body?: string;
  mode?: number;
  linkpath?: string;
}

export function craftTarGz(entries: readonly CraftedEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const body = Buffer.from(e.body ?? "");
    const header = new Header({
      path: e.path,
      type: e.type ?? "File",
      mode: e.mode ?? 0o644,
      size: body.length,
      mtime: new Date("2025-01-01T00:00:00Z"),
      uid: 0,
      gid: 0,
      ...(e.linkpath ? { linkpath: e.linkpath } : {}),
    });
    const block = Buffer.alloc(512);
    header.encode(block);
    blocks.push(block);
    if (body.length > 0) blocks.push(body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return gzipSync(Buffer.concat(blocks));
}
