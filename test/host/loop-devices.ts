/**
 * Loop devices for a container that runs systemd-sysext: the container sees only the device nodes bound into it
 * (nspawn's /dev is its own), and the kernel hands out the lowest free loop device, so enough free ones must exist
 * before it boots. Every merge attaches each image anew, and an image whose files a running process still maps (the
 * agent's own executable, a running containerd) keeps its old loop device until that process exits, so a plan with
 * two refreshes and a reset needs several at once.
 */
import { mkdtemp, readdir, rm, stat, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runTool } from "../../node-agent/packaging/run-tool.js";

interface LoopInfo {
  name: string;
  "back-file": string | null;
  "back-ino": number | string | null;
  "back-maj:min": string | null;
}

export async function loopDeviceNodes(): Promise<string[]> {
  return (await readdir("/dev"))
    .filter((n) => /^loop\d+$/.test(n))
    .sort((a, b) => Number(a.slice(4)) - Number(b.slice(4)))
    .map((n) => `/dev/${n}`);
}

async function attached(): Promise<LoopInfo[]> {
  const { stdout } = await runTool("losetup", ["--list", "--json", "--output", "NAME,BACK-FILE,BACK-INO,BACK-MAJ:MIN"], { allowFailure: true });
  if (stdout.trim() === "") return [];
  return (JSON.parse(stdout) as { loopdevices: LoopInfo[] }).loopdevices;
}

/** At least `count` free loop devices exist afterwards; returns every loop device node (to bind into the container). */
export async function ensureFreeLoopDevices(count: number): Promise<string[]> {
  const busy = new Set((await attached()).map((l) => l.name));
  const free = (await loopDeviceNodes()).filter((n) => !busy.has(n));
  if (free.length < count) {
    // `losetup -f` takes the lowest free device and creates one when none is free: holding `count` of them and
    // letting go leaves at least `count` free.
    const dir = await mkdtemp(join(tmpdir(), "flexnode-loop-"));
    const held: string[] = [];
    try {
      for (let i = 0; i < count; i++) {
        const file = join(dir, `backing-${i}`);
        await writeFile(file, "");
        await truncate(file, 1024 * 1024);
        held.push((await runTool("losetup", ["--find", "--show", file])).stdout.trim());
      }
    } finally {
      for (const device of held) await runTool("losetup", ["--detach", device], { allowFailure: true });
      await rm(dir, { recursive: true, force: true });
    }
  }
  return loopDeviceNodes();
}

/** Detaches loop devices still backed by files under `dir` (a container's images), matched by device and inode. */
export async function detachLoopsBackedBy(files: readonly string[]): Promise<string[]> {
  const ids = new Set<string>();
  for (const file of files) {
    try {
      const s = await stat(file);
      // Linux dev_t: major in bits 8-19, minor in bits 0-7 and 20-31.
      ids.add(`${(s.dev >>> 8) & 0xfff}:${(s.dev & 0xff) | ((s.dev >>> 12) & 0xfff00)} ${s.ino}`);
    } catch {
      // gone already
    }
  }
  const detached: string[] = [];
  for (const loop of await attached()) {
    if (ids.has(`${loop["back-maj:min"]} ${String(loop["back-ino"])}`)) {
      await runTool("losetup", ["--detach", loop.name], { allowFailure: true });
      detached.push(loop.name);
    }
  }
  return detached;
}
