/**
 * Crash-safe file replacement: write a temporary file in the same directory, fsync it, rename it over the target and
 * fsync the directory, so after a power cut or kill -9 the target holds either the old or the new bytes. The
 * temporary name is a pure function of the target, so a retry after a crash overwrites the leftover and an undo can
 * remove it, instead of random names piling up.
 */
import { createHash } from "node:crypto";
import { constants, createReadStream } from "node:fs";
import { copyFile, lstat, open, rename, rm } from "node:fs/promises";
import * as path from "node:path";
import type { Stats } from "node:fs";

export interface FileAttributes {
  mode: number;
  uid?: number;
  gid?: number;
}

export function tempPathFor(fsPath: string): string {
  return path.join(path.dirname(fsPath), `.${path.basename(fsPath)}.flexnode-tmp`);
}

export async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function finish(tmp: string, fsPath: string, attrs: FileAttributes): Promise<void> {
  const handle = await open(tmp, constants.O_RDWR | constants.O_NOFOLLOW);
  try {
    // chmod after creation: the mode asked for must not depend on the process umask.
    await handle.chmod(attrs.mode);
    if (attrs.uid !== undefined || attrs.gid !== undefined) await handle.chown(attrs.uid ?? -1, attrs.gid ?? -1);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(tmp, fsPath);
  await fsyncDir(path.dirname(fsPath));
}

export async function writeFileAtomic(fsPath: string, data: string | Uint8Array, attrs: FileAttributes): Promise<void> {
  const tmp = tempPathFor(fsPath);
  await rm(tmp, { force: true });
  try {
    const handle = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    try {
      await handle.writeFile(data);
    } finally {
      await handle.close();
    }
    await finish(tmp, fsPath, attrs);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

export async function copyFileAtomic(source: string, fsPath: string, attrs: FileAttributes): Promise<void> {
  const tmp = tempPathFor(fsPath);
  await rm(tmp, { force: true });
  try {
    await copyFile(source, tmp, constants.COPYFILE_EXCL);
    await finish(tmp, fsPath, attrs);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

export async function sha256File(fsPath: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(fsPath)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

export async function lstatIfExists(fsPath: string): Promise<Stats | undefined> {
  try {
    return await lstat(fsPath);
  } catch (e) {
    if (typeof e === "object" && e !== null && (e as { code?: unknown }).code === "ENOENT") return undefined;
    throw e;
  }
}
