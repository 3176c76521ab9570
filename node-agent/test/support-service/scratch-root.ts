/**
 * Throwaway host roots for the agent's tests: a temp directory laid out like a machine's `/` with only the files a test
 * needs (os-release, machine-id, DMI, mountinfo), and a digest of the whole tree for "nothing on disk changed".
 */
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, readlink, rm, lstat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

export interface ScratchRoot {
  dir: string;
  write(path: string, content: string, mode?: number): Promise<void>;
  remove(): Promise<void>;
}

export async function scratchRoot(files: Record<string, string> = {}): Promise<ScratchRoot> {
  const dir = await mkdtemp(join(tmpdir(), "flexnode-agent-"));
  const write = async (path: string, content: string, mode = 0o644) => {
    const full = join(dir, path);
    await mkdir(dirname(full), { recursive: true });
    await writeFile(full, content, { mode });
  };
  for (const [path, content] of Object.entries(files)) await write(path, content);
  return { dir, write, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** sha256 over every path, type, mode and content under `dir`, in a stable order. */
export async function hashTree(dir: string): Promise<string> {
  const hash = createHash("sha256");
  const walk = async (rel: string): Promise<void> => {
    const entries = (await readdir(join(dir, rel))).sort();
    for (const name of entries) {
      const path = join(rel, name);
      const full = join(dir, path);
      const st = await lstat(full);
      hash.update(`${path}\0${st.mode}\0`);
      if (st.isDirectory()) await walk(path);
      else if (st.isSymbolicLink()) hash.update(await readlink(full));
      else hash.update(await readFile(full));
      hash.update("\n");
    }
  };
  await walk("");
  return hash.digest("hex");
}

const MOUNTINFO_HEAD = "22 1 253:0 / / rw,relatime shared:1 - ext4 /dev/vda9 rw\n";

/** Host files of a few real distributions, as they ship them (trimmed to what the agent reads). */
export const HOSTS = {
  flatcar: {
    "/etc/os-release":
      'NAME="Flatcar Container Linux by Kinvolk"\nID=flatcar\nID_LIKE=coreos\nVERSION=4081.2.0\nVERSION_ID=4081.2.0\nBUILD_ID=2024-12-02-2047\nPRETTY_NAME="Flatcar Container Linux by Kinvolk 4081.2.0 (Oklo)"\nANSI_COLOR="38;5;75"\nHOME_URL="https://flatcar.org/"\n',
    "/etc/machine-id": "0f1e2d3c4b5a69788796a5b4c3d2e1f0\n",
    "/sys/class/dmi/id/product_uuid": "4C4C4544-0051-3010-8052-B4C04F564433\n",
    "/proc/self/mountinfo": `${MOUNTINFO_HEAD}23 22 254:0 / /usr ro,relatime shared:2 - ext4 /dev/mapper/usr ro,seclabel\n`,
    "/proc/sys/kernel/hostname": "edge-flatcar-01\n",
    "/proc/sys/kernel/osrelease": "6.6.60-flatcar\n",
    "/proc/meminfo": "MemTotal:        8131468 kB\nMemFree:          123456 kB\n",
    "/sys/devices/system/cpu/online": "0-3\n",
  },
  ubuntu: {
    "/usr/lib/os-release":
      'PRETTY_NAME="Ubuntu 24.04.1 LTS"\nNAME="Ubuntu"\nVERSION_ID="24.04"\nVERSION="24.04.1 LTS (Noble Numbat)"\nID=ubuntu\nID_LIKE=debian\n',
    "/etc/machine-id": "a1b2c3d4e5f60718293a4b5c6d7e8f90\n",
    "/sys/class/dmi/id/product_uuid": "03000200-0400-0500-0006-000700080009\n",
    "/proc/self/mountinfo": MOUNTINFO_HEAD,
    "/proc/sys/kernel/hostname": "ubuntu-worker\n",
    "/proc/sys/kernel/osrelease": "6.8.0-49-generic\n",
  },
  fedoraCoreos: {
    "/etc/os-release":
      'NAME="Fedora Linux"\nVERSION="41.20241109.3.0 (CoreOS)"\nID=fedora\nVERSION_ID=41\nVARIANT="CoreOS"\nVARIANT_ID=coreos\nPRETTY_NAME="Fedora CoreOS 41.20241109.3.0"\nOSTREE_VERSION=\'41.20241109.3.0\'\n',
    "/etc/machine-id": "1234567890abcdef1234567890abcdef\n",
    "/run/ostree-booted": "",
    "/proc/self/mountinfo": `${MOUNTINFO_HEAD}24 22 253:4 /ostree/deploy/fedora-coreos/deploy/abc.0/usr /usr ro,relatime shared:3 - xfs /dev/vda4 rw,seclabel\n`,
    "/proc/sys/kernel/hostname": "fcos-1\n",
    "/proc/sys/kernel/osrelease": "6.11.6-300.fc41.x86_64\n",
  },
} satisfies Record<string, Record<string, string>>;
