/**
 * The real-host tier's machine image: a Debian 12 (bookworm) root made with `debootstrap --variant=minbase`, built
 * once per machine and cached outside the repository under /var/cache/flexnode-host-root/<key>, where the key hashes
 * everything the build depends on (suite, mirror, packages, this kernel's release, the build recipe's version). A
 * build goes to a temporary directory renamed into place at the end, so a crash never leaves half a root behind and
 * two builders racing both end with one whole root.
 *
 * What the build adds to plain minbase, each because a Flatcar-like host has it:
 * - systemd (252 in bookworm; systemd-sysext and systemd-analyze are part of it), dbus, kmod, procps (sysctl),
 *   curl and openssl (the kubelet stand-in's TLS bootstrap), ca-certificates;
 * - `systemd-sysext.service` enabled, so images in /var/lib/extensions merge at boot (Debian ships it disabled);
 * - the module index of the kernel the tier runs on under /usr/lib/modules/<release>: copied from the host's
 *   /lib/modules when it has one, otherwise (a kernel without loadable modules, like this CI's Firecracker kernel) a
 *   `modules.builtin` naming the built-in modules the plan needs, found from what the running kernel exposes, then
 *   `depmod` — what a distribution's kernel package would ship, so modprobe answers as on a real host;
 * - apt's timers masked (nothing may write the root behind the test's back), caches and lists removed.
 *
 * Debian's containerd and runc packages are downloaded with the root (debootstrap resolves them) and purged from it
 * again: their files become the container runtime's systemd-sysext image (`containerd-<arch>.raw`) that the artifact
 * mirror serves, because on an immutable host the plan installs the runtime as an image, not as a package.
 */
import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, copyFile, mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { release } from "node:os";
import { dirname, join } from "node:path";
import { parseOsRelease, squash, systemdArchitecture } from "../../node-agent/packaging/sysext.js";
import { runTool } from "../../node-agent/packaging/run-tool.js";

/** Bump when the recipe below changes: the cache key changes with it. */
const RECIPE_VERSION = 4;
export const SUITE = "bookworm";
export const DEFAULT_CACHE_BASE = "/var/cache/flexnode-host-root";
const PACKAGES = ["systemd", "dbus", "kmod", "procps", "curl", "openssl", "ca-certificates"] as const;
const RUNTIME_PACKAGES = ["containerd", "runc"] as const;
/** Timers that would write the root (apt, dpkg backups, filesystem checks) while a test compares it. */
const MASKED_UNITS = ["apt-daily.timer", "apt-daily-upgrade.timer", "dpkg-db-backup.timer", "e2scrub_all.timer", "e2scrub_reap.service", "fstrim.timer"];
/** Modules the plan loads; on a kernel without loadable modules each must be built in (evidence: see builtinEvidence). */
const PLAN_MODULES: Record<string, string> = {
  overlay: "kernel/fs/overlayfs/overlay.ko",
  br_netfilter: "kernel/net/bridge/br_netfilter.ko",
  bridge: "kernel/net/bridge/bridge.ko",
};

export interface HostRoot {
  /** The cache entry: root/, artifacts/, manifest.json. */
  dir: string;
  /** The OS tree; never booted directly (each machine copies it, and binds its /usr read-only). */
  root: string;
  /** The container runtime's sysext image, built from Debian's containerd and runc. */
  containerdImage: string;
  key: string;
  manifest: RootManifest;
  /** True when this call built it. */
  built: boolean;
  seconds: number;
}

export interface RootManifest {
  key: string;
  suite: string;
  mirror: string;
  kernel: string;
  packages: string[];
  containerd: { version: string; runc: string; files: string[] };
  modules: { source: "host" | "builtin"; names: string[] };
  osRelease: { id: string; versionId: string };
  builtAt: string;
  buildSeconds: number;
}

/** The Debian mirror this machine's apt uses (deb822 or one-line sources), so the root comes from the same place. */
export async function debianMirror(): Promise<string> {
  const files = [
    "/etc/apt/sources.list",
    ...(existsSync("/etc/apt/sources.list.d") ? (await readdir("/etc/apt/sources.list.d")).map((f) => join("/etc/apt/sources.list.d", f)) : []),
  ];
  for (const file of files) {
    const text = await readFile(file, "utf8").catch(() => "");
    // deb822: a stanza with Types: deb, URIs: <url>, Suites: bookworm ...
    for (const stanza of text.split(/\n\s*\n/)) {
      const uri = /^URIs:\s*(\S+)/im.exec(stanza)?.[1];
      const suites = /^Suites:\s*(.+)$/im.exec(stanza)?.[1]?.split(/\s+/) ?? [];
      if (uri && /^Types:.*\bdeb\b/im.test(stanza) && suites.includes(SUITE)) return uri.replace(/\/$/, "");
    }
    const line = new RegExp(`^deb\\s+(?:\\[[^\\]]*\\]\\s+)?(\\S+)\\s+${SUITE}\\s`, "m").exec(text)?.[1];
    if (line) return line.replace(/\/$/, "");
  }
  return "http://deb.debian.org/debian";
}

/** Why each plan module counts as built into the running kernel (used only when the host has no /lib/modules). */
async function builtinEvidence(): Promise<string[]> {
  const names: string[] = [];
  const filesystems = await readFile("/proc/filesystems", "utf8").catch(() => "");
  if (/\boverlay$/m.test(filesystems)) names.push("overlay");
  if (existsSync("/proc/sys/net/bridge/bridge-nf-call-iptables")) names.push("br_netfilter");
  if (existsSync("/sys/module/bridge")) names.push("bridge");
  return names;
}

export async function hostRootKey(): Promise<{ key: string; mirror: string; kernel: string }> {
  const mirror = await debianMirror();
  const kernel = release();
  const modulesIndex = existsSync(`/lib/modules/${kernel}/modules.dep`) ? "host" : `builtin:${(await builtinEvidence()).join(",")}`;
  const key = createHash("sha256")
    .update(
      JSON.stringify({
        recipe: RECIPE_VERSION,
        suite: SUITE,
        mirror,
        packages: PACKAGES,
        runtime: RUNTIME_PACKAGES,
        masked: MASKED_UNITS,
        kernel,
        modulesIndex,
        arch: process.arch,
      }),
    )
    .digest("hex")
    .slice(0, 16);
  return { key, mirror, kernel };
}

export interface EnsureHostRootOptions {
  cacheBase?: string;
  /** Progress lines. */
  log?: (line: string) => void;
  /** Build when missing (default true); false answers undefined instead. */
  build?: boolean;
}

/** The cached root for this machine, built first if absent. */
export async function ensureHostRoot(options: EnsureHostRootOptions = {}): Promise<HostRoot | undefined> {
  const log = options.log ?? (() => undefined);
  const base = options.cacheBase ?? DEFAULT_CACHE_BASE;
  const { key, mirror, kernel } = await hostRootKey();
  const dir = join(base, key);
  const started = Date.now();
  const existing = await readManifest(dir);
  if (existing) return { dir, root: join(dir, "root"), containerdImage: containerdImagePath(dir), key, manifest: existing, built: false, seconds: 0 };
  if (options.build === false) return undefined;

  await mkdir(base, { recursive: true });
  const work = join(base, `.build-${key}-${randomBytes(4).toString("hex")}`);
  try {
    const manifest = await build({ work, key, mirror, kernel, log });
    manifest.buildSeconds = Math.round((Date.now() - started) / 100) / 10;
    await writeFile(join(work, "manifest.json"), `${JSON.stringify(manifest, null, 2)}\n`);
    try {
      await rename(work, dir);
    } catch (error) {
      // Another builder finished first: keep theirs.
      if (!(await readManifest(dir))) throw error;
      log(`host root ${key}: another build finished first; using it`);
    }
    const manifestNow = (await readManifest(dir))!;
    return { dir, root: join(dir, "root"), containerdImage: containerdImagePath(dir), key, manifest: manifestNow, built: true, seconds: manifest.buildSeconds };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

function containerdImagePath(dir: string): string {
  return join(dir, "artifacts", `containerd-${process.arch === "x64" ? "amd64" : "arm64"}.raw`);
}

async function readManifest(dir: string): Promise<RootManifest | undefined> {
  try {
    const manifest = JSON.parse(await readFile(join(dir, "manifest.json"), "utf8")) as RootManifest;
    await stat(join(dir, "root/usr/lib/systemd/systemd"));
    await stat(containerdImagePath(dir));
    return manifest;
  } catch {
    return undefined;
  }
}

async function build(o: { work: string; key: string; mirror: string; kernel: string; log: (line: string) => void }): Promise<RootManifest> {
  const root = join(o.work, "root");
  await mkdir(o.work, { recursive: true });
  o.log(`host root ${o.key}: debootstrap --variant=minbase ${SUITE} from ${o.mirror}`);
  await runTool("debootstrap", ["--variant=minbase", `--include=${[...PACKAGES, ...RUNTIME_PACKAGES].join(",")}`, SUITE, root, o.mirror], {
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
  });

  // The runtime's packages become an image; the root goes back to having no container runtime.
  const archives = join(root, "var/cache/apt/archives");
  const debs = (await readdir(archives)).filter((f) => f.endsWith(".deb"));
  const debOf = (pkg: string): string => {
    const file = debs.find((f) => f.startsWith(`${pkg}_`));
    if (!file) throw new Error(`debootstrap left no ${pkg} package in ${archives}`);
    return join(archives, file);
  };
  const payload = join(o.work, "runtime-payload");
  for (const pkg of RUNTIME_PACKAGES) await runTool("dpkg-deb", ["-x", debOf(pkg), payload]);
  const versionOf = (pkg: string): string => decodeURIComponent(debOf(pkg).split("/").pop()!.split("_")[1]!);
  const containerdVersion = versionOf("containerd");
  const runcVersion = versionOf("runc");
  await runTool("chroot", [root, "dpkg", "--purge", ...RUNTIME_PACKAGES], { env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });

  await runTool("chroot", [root, "systemctl", "enable", "systemd-sysext.service"]);
  await runTool("chroot", [root, "systemctl", "mask", ...MASKED_UNITS]);
  // Each machine gets its own id when it is prepared; an empty file makes systemd generate one otherwise.
  await writeFile(join(root, "etc/machine-id"), "");
  for (const dir of ["var/cache/apt/archives", "var/lib/apt/lists"]) {
    for (const f of await readdir(join(root, dir)).catch(() => []))
      if (f !== "partial" && f !== "lock") await rm(join(root, dir, f), { recursive: true, force: true });
  }
  await rm(join(root, "var/log/bootstrap.log"), { force: true });

  const modules = await moduleIndex(root, o.kernel);
  const osRelease = parseOsRelease(await readFile(join(root, "usr/lib/os-release"), "utf8"));
  const files = await runtimeImage({ payload, output: containerdImagePath(o.work), osRelease, version: containerdVersion });
  await rm(payload, { recursive: true, force: true });
  o.log(`host root ${o.key}: containerd ${containerdVersion}, runc ${runcVersion} image built (${files.length} files)`);
  return {
    key: o.key,
    suite: SUITE,
    mirror: o.mirror,
    kernel: o.kernel,
    packages: [...PACKAGES],
    containerd: { version: containerdVersion, runc: runcVersion, files },
    modules,
    osRelease: { id: osRelease["ID"] ?? "", versionId: osRelease["VERSION_ID"] ?? "" },
    builtAt: new Date().toISOString(),
    buildSeconds: 0,
  };
}

/** /usr/lib/modules/<kernel> in the root: the host's index files, or a modules.builtin for a kernel without modules. */
async function moduleIndex(root: string, kernel: string): Promise<RootManifest["modules"]> {
  const target = join(root, "usr/lib/modules", kernel);
  await mkdir(target, { recursive: true });
  const hostDir = `/lib/modules/${kernel}`;
  if (existsSync(join(hostDir, "modules.dep"))) {
    // Only the index files: the container cannot load a module anyway (no CAP_SYS_MODULE), but modprobe must find a
    // loaded or built-in one by name, as on the host.
    for (const f of (await readdir(hostDir)).filter((n) => n.startsWith("modules."))) await copyFile(join(hostDir, f), join(target, f));
    return { source: "host", names: [] };
  }
  const names = await builtinEvidence();
  await writeFile(join(target, "modules.builtin"), names.map((n) => `${PLAN_MODULES[n]}\n`).join(""));
  await writeFile(join(target, "modules.order"), "");
  await runTool("chroot", [root, "depmod", kernel]);
  return { source: "builtin", names };
}

/**
 * containerd's systemd-sysext image from Debian's packages: the daemon, its runc shim, ctr and runc under /usr, the
 * package's own containerd.service, and an extension-release that matches the host (ID and VERSION_ID of Debian 12,
 * the way an image built for one OS release is tagged), so systemd-sysext merges it here and nowhere else.
 *
 * One addition to Debian's unit, a drop-in that declares where containerd keeps its state: `StateDirectory=containerd`
 * and a config (in the image, as Flatcar keeps its own under /usr/share) that moves the "opt" plugin's directory from
 * /opt/containerd into it. With Debian's unit as packaged, containerd creates /var/lib/containerd and /opt/containerd
 * itself and a reset leaves both behind (found on this tier); a declared state directory is one the agent records
 * when it starts the unit, and reset removes it.
 */
async function runtimeImage(o: { payload: string; output: string; osRelease: Record<string, string>; version: string }): Promise<string[]> {
  const tree = join(dirname(o.output), "containerd-tree");
  const pick: [string, string, number][] = [];
  for (const name of ["containerd", "containerd-shim-runc-v2", "ctr"]) pick.push([`usr/bin/${name}`, `usr/bin/${name}`, 0o755]);
  pick.push([existsSync(join(o.payload, "usr/sbin/runc")) ? "usr/sbin/runc" : "usr/bin/runc", "usr/bin/runc", 0o755]);
  const unit = ["lib/systemd/system/containerd.service", "usr/lib/systemd/system/containerd.service"].find((p) => existsSync(join(o.payload, p)));
  if (!unit) throw new Error("Debian's containerd package has no containerd.service");
  pick.push([unit, "usr/lib/systemd/system/containerd.service", 0o644]);
  for (const [from, to, mode] of pick) {
    await mkdir(dirname(join(tree, to)), { recursive: true });
    await copyFile(join(o.payload, from), join(tree, to));
    await chmod(join(tree, to), mode);
  }
  const declared: [string, string][] = [
    [
      "usr/lib/systemd/system/containerd.service.d/10-state-directory.conf",
      "# Added by the flexnode real-host tier's image build: containerd's state is declared, so whoever starts it knows it.\n[Service]\nStateDirectory=containerd\nExecStart=\nExecStart=/usr/bin/containerd --config /usr/share/containerd/config.toml\n",
    ],
    [
      "usr/share/containerd/config.toml",
      'version = 2\nroot = "/var/lib/containerd"\nstate = "/run/containerd"\n\n[plugins."io.containerd.internal.v1.opt"]\n  path = "/var/lib/containerd/opt"\n',
    ],
  ];
  for (const [to, text] of declared) {
    await mkdir(dirname(join(tree, to)), { recursive: true });
    await writeFile(join(tree, to), text);
    await chmod(join(tree, to), 0o644);
  }
  const releaseFile = join(tree, "usr/lib/extension-release.d/extension-release.containerd");
  await mkdir(dirname(releaseFile), { recursive: true });
  await writeFile(releaseFile, sysextRelease({ osRelease: o.osRelease, name: "containerd", version: o.version }));
  await squash(tree, o.output);
  await rm(tree, { recursive: true, force: true });
  return [...pick.map(([, to]) => to), ...declared.map(([to]) => to), "usr/lib/extension-release.d/extension-release.containerd"];
}

/** extension-release for an image built for this host's OS release (ID + VERSION_ID), architecture pinned. */
export function sysextRelease(o: { osRelease: Record<string, string>; name: string; version: string }): string {
  return [
    `ID=${o.osRelease["ID"] ?? "debian"}`,
    `VERSION_ID=${o.osRelease["VERSION_ID"] ?? "12"}`,
    `ARCHITECTURE=${systemdArchitecture()}`,
    `SYSEXT_ID=${o.name}`,
    `SYSEXT_VERSION_ID=${o.version}`,
    "",
  ].join("\n");
}
