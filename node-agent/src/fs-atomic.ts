/**
 * The agent's one atomic file writer. Crash-safe file replacement: write a temporary file in the same directory
 * (created exclusively, never through a symlink, then given exactly the mode and owner asked for), fsync it, rename
 * it over the target and fsync the directory, so after a power cut or kill -9 the target holds either the old or the
 * new bytes. By default the temporary name is a pure function of the target, so a retry after a crash overwrites the
 * leftover and an undo can remove it, instead of random names piling up; writers that may race on one target (the
 * agent's private files) pass a unique one.
 */
import { createHash, randomBytes } from "node:crypto";
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

/** A fresh temporary name beside `fsPath`, for writers that may run at once on the same target. */
export function uniqueTempPathFor(fsPath: string): string {
  return path.join(path.dirname(fsPath), `.${randomBytes(6).toString("hex")}.tmp`);
}

export async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Gives the file at `tmp` exactly `attrs` and makes its bytes durable. */
async function settle(tmp: string, attrs: FileAttributes): Promise<void> {
  const handle = await open(tmp, constants.O_RDWR | constants.O_NOFOLLOW);
  try {
    // chmod after creation: the mode asked for must not depend on the process umask.
    await handle.chmod(attrs.mode);
    if (attrs.uid !== undefined || attrs.gid !== undefined) await handle.chown(attrs.uid ?? -1, attrs.gid ?? -1);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Renames the settled `tmp` over `fsPath` and makes the rename durable. */
async function commit(tmp: string, fsPath: string): Promise<void> {
  await rename(tmp, fsPath);
  await fsyncDir(path.dirname(fsPath));
}

/**
 * Creates `tmp`, which must not exist (0600 until settled, never through a symlink), holding `data` with exactly
 * `attrs`, fsync'd; removes it again if that fails after creating it. What is then done with it (rename, link) and
 * removing it afterwards is up to the caller.
 */
export async function writeTempFile(tmp: string, data: string | Uint8Array, attrs: FileAttributes): Promise<void> {
  const handle = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    try {
      await handle.writeFile(data);
    } finally {
      await handle.close();
    }
    await settle(tmp, attrs);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

export interface AtomicWriteOptions {
  /** The temporary file to write first (default: `tempPathFor(fsPath)`). */
  tempPath?: string;
}

export async function writeFileAtomic(fsPath: string, data: string | Uint8Array, attrs: FileAttributes, options: AtomicWriteOptions = {}): Promise<void> {
  const tmp = options.tempPath ?? tempPathFor(fsPath);
  await rm(tmp, { force: true });
  try {
    await writeTempFile(tmp, data, attrs);
    await commit(tmp, fsPath);
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
    await settle(tmp, attrs);
    await commit(tmp, fsPath);
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
