/**
 * Outputs are replaced atomically and only when their bytes change: other test files may be running the bundle from
 * dist/agent while a build (the packaging test's beforeAll) re-creates it, and must never see a half-written file.
 */
import { randomBytes } from "node:crypto";
import { chmod, readFile, rename, rm, writeFile } from "node:fs/promises";

/** True when the file was (re)written. */
export async function writeIfChanged(path: string, data: string | Buffer, mode?: number): Promise<boolean> {
  const bytes = typeof data === "string" ? Buffer.from(data) : data;
  try {
    if ((await readFile(path)).equals(bytes)) {
      if (mode !== undefined) await chmod(path, mode);
      return false;
    }
  } catch {
    // Missing: write it.
  }
  const temp = `${path}.${randomBytes(4).toString("hex")}.tmp`;
  try {
    await writeFile(temp, bytes);
    if (mode !== undefined) await chmod(temp, mode);
    await rename(temp, path);
  } finally {
    await rm(temp, { force: true });
  }
  return true;
}
