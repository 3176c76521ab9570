/**
 * Files only the agent may read (its identity key, its state): created 0600 in 0700 directories, replaced atomically
 * by the agent's one writer (`fs-atomic.ts`: temp file, fsync, rename, fsync of the directory) so a power cut leaves
 * the old or the new file, never half of one, and refused when their permissions have been loosened, because a key
 * others could read is no longer an identity.
 */
import { chmod, link, lstat, mkdir, rm, stat } from "node:fs/promises";
import { dirname } from "node:path";
import { fsyncDir, uniqueTempPathFor, writeFileAtomic, writeTempFile } from "./fs-atomic.js";

const PRIVATE_FILE = { mode: 0o600 };

export class InsecurePermissionsError extends Error {
  readonly code = "insecure_permissions";
  constructor(
    readonly path: string,
    readonly mode: number,
    readonly expected: number,
    why: string,
  ) {
    super(
      `${path} is ${why} (mode ${mode.toString(8).padStart(4, "0")}); it must be ${expected.toString(8).padStart(4, "0")} and owned by this user. Fix it (chmod ${expected.toString(8)} ${path}) or remove it`,
    );
    this.name = "InsecurePermissionsError";
  }
}

const uid = () => (typeof process.getuid === "function" ? process.getuid() : undefined);

/** Throws InsecurePermissionsError when `path` grants anything to group/others, is a symlink, or belongs to someone else. */
export async function assertPrivate(path: string, kind: "file" | "directory"): Promise<void> {
  const expected = kind === "file" ? 0o600 : 0o700;
  const st = await lstat(path);
  const mode = st.mode & 0o7777;
  if (st.isSymbolicLink()) throw new InsecurePermissionsError(path, mode, expected, "a symbolic link");
  if (kind === "file" ? !st.isFile() : !st.isDirectory()) throw new InsecurePermissionsError(path, mode, expected, `not a ${kind}`);
  if ((mode & 0o077) !== 0) throw new InsecurePermissionsError(path, mode, expected, "readable or writable by other users");
  const me = uid();
  if (me !== undefined && st.uid !== me) throw new InsecurePermissionsError(path, mode, expected, `owned by uid ${st.uid}, not ${me}`);
}

/**
 * Creates `dir` 0700 (missing parents 0755) and narrows an existing one to 0700: for the agent's state directory
 * (`agentFiles(root).stateDir`), which holds the identity directory, state.json, the manifest with its prior blobs
 * (which may be secrets) and the download cache. Enrolment used to create it 0755 on mutable installs, so an existing
 * one is narrowed rather than refused. A directory reached through a symlink is narrowed where it really is.
 */
export async function ensureOwnerOnlyDir(dir: string): Promise<void> {
  await mkdir(dirname(dir), { recursive: true, mode: 0o755 });
  try {
    await mkdir(dir, { mode: 0o700 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
  }
  const st = await stat(dir);
  if (!st.isDirectory()) throw Object.assign(new Error(`${dir} exists and is not a directory`), { code: "ENOTDIR", path: dir });
  if ((st.mode & 0o7777) !== 0o700) await chmod(dir, 0o700);
}

/**
 * Creates `dir` and makes it 0700; an existing one must already be private. Its parent (the agent's state directory)
 * is created, or narrowed, to 0700 as well (ensureOwnerOnlyDir); missing parents above that are 0755.
 */
export async function ensurePrivateDir(dir: string): Promise<void> {
  await ensureOwnerOnlyDir(dirname(dir));
  try {
    await mkdir(dir, { mode: 0o700 });
    // The umask may have narrowed mkdir's mode; never widened it, but say exactly what we mean.
    await chmod(dir, 0o700);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
  }
  await assertPrivate(dir, "directory");
}

/**
 * Writes `data` to a fresh 0600 temp file beside `path` and renames it over `path`. The temp name is unique: two
 * writers of the same file never share (or remove) each other's temp file.
 */
export async function writePrivateFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  await writeFileAtomic(path, data, PRIVATE_FILE, { tempPath: uniqueTempPathFor(path) });
}

/**
 * Creates `path` with `data` only if it does not exist yet (0600, durable). Returns false when it already existed;
 * two agents racing to create an identity end up with one key, the first one written.
 */
export async function createPrivateFileOnce(path: string, data: string | Uint8Array): Promise<boolean> {
  const temp = uniqueTempPathFor(path);
  await writeTempFile(temp, data, PRIVATE_FILE);
  try {
    // link() fails with EEXIST instead of replacing: the atomic "create if absent" for a fully written file.
    await link(temp, path);
    await fsyncDir(dirname(path));
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw error;
  } finally {
    await rm(temp, { force: true });
  }
}
