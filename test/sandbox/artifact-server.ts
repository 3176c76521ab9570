/**
 * The sandbox's artifact mirror: the shared test mirror (`test/support/artifact-mirror.ts`: HTTPS on 127.0.0.1 with a
 * certificate from the test CA, made at run time and never stored; Range requests) serving, under `/artifacts/`,
 * small but real artifacts — gzip'd tarballs with the layout of the containerd and CNI release archives, a kubelet
 * file, and sysext image files — whose sha256 digests become the `ARTIFACT_CATALOG`.
 * The binaries inside are labelled shell scripts: nothing is ever executed, the agent only places them.
 *
 * Failure injection: `corrupt(name)` serves the artifact with one byte flipped (same length), so a node's digest check
 * fails exactly as it would against a tampered or truncated mirror.
 */
import { createHash } from "node:crypto";
import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tar from "tar";
import type { ArtifactCatalog } from "../../orchestrations/node-plan/node-plan.js";
import { startArtifactMirror, type MirrorRequest } from "../support/index.js";

export interface ServedArtifact {
  name: string;
  bytes: Buffer;
  sha256: string;
}

export type ArtifactRequest = MirrorRequest;

export interface ArtifactServer {
  origin: string;
  /** PEM of the test CA that issued the server certificate: what the agent gets as its extra CA. */
  ca: string;
  catalog: ArtifactCatalog;
  artifacts: ReadonlyMap<string, ServedArtifact>;
  readonly requests: readonly ArtifactRequest[];
  /** Serves `name` with one byte flipped from now on (every node that fetches it sees a digest mismatch). */
  corrupt(name: string): void;
  /** The artifact name behind a catalog URL. */
  nameOf(url: string): string | undefined;
  close(): Promise<void>;
}

const ARCHES = ["amd64", "arm64"] as const;

export async function startArtifactServer(options: { kubernetesVersion: string }): Promise<ArtifactServer> {
  const artifacts = new Map<string, ServedArtifact>();
  const add = (name: string, bytes: Buffer) => artifacts.set(name, { name, bytes, sha256: createHash("sha256").update(bytes).digest("hex") });
  const v = options.kubernetesVersion;
  for (const arch of ARCHES) {
    add(`containerd-${arch}.tar.gz`, await tarball({ "bin/containerd": stub(`containerd ${arch}`), "bin/containerd-shim-runc-v2": stub(`containerd-shim-runc-v2 ${arch}`), "bin/ctr": stub(`ctr ${arch}`) }));
    add(`kubelet-${v}-${arch}`, Buffer.from(stub(`kubelet v${v} ${arch}`)));
    add(`cni-plugins-${arch}.tgz`, await tarball({ bridge: stub(`CNI bridge ${arch}`), "host-local": stub(`CNI host-local ${arch}`), loopback: stub(`CNI loopback ${arch}`), portmap: stub(`CNI portmap ${arch}`) }));
    add(`containerd-${arch}.raw`, sysextImage("containerd", arch, ["containerd.service"]));
    add(`kubernetes-${v}-${arch}.raw`, sysextImage(`kubernetes-${v}`, arch, []));
  }

  const mirror = await startArtifactMirror({ pathPrefix: "artifacts/" });
  for (const { name, bytes } of artifacts.values()) mirror.put(name, bytes);
  const entry = (name: string) => ({ url: mirror.url(name), sha256: artifacts.get(name)!.sha256 });
  const byArch = (name: (arch: string) => string) => Object.fromEntries(ARCHES.map((arch) => [arch, entry(name(arch))]));
  const catalog: ArtifactCatalog = {
    containerd: byArch((a) => `containerd-${a}.tar.gz`),
    kubernetes: { [v]: byArch((a) => `kubelet-${v}-${a}`) },
    cniPlugins: byArch((a) => `cni-plugins-${a}.tgz`),
    sysext: { containerd: byArch((a) => `containerd-${a}.raw`), kubernetes: { [v]: byArch((a) => `kubernetes-${v}-${a}.raw`) } },
  };
  return {
    origin: mirror.origin,
    ca: mirror.ca,
    catalog,
    artifacts,
    requests: mirror.requests,
    corrupt: (name) => mirror.corrupt(name),
    nameOf: (url) => mirror.nameOf(url),
    close: () => mirror.close(),
  };
}

/** A labelled stand-in for a binary: placed with its mode by the agent, never run. */
const stub = (what: string): string => `#!/bin/sh\n# ${what}: an emulated artifact of the flexnode local sandbox, not the real program.\necho "emulated ${what}"\n`;

/**
 * A sysext image stand-in. Real images are squashfs/erofs file systems that systemd-sysext merges over /usr; in the
 * sandbox systemd-sysext itself is simulated (simulated-host.ts), so the image is a labelled text file naming the
 * unit files the real image would ship in usr/lib/systemd/system.
 */
function sysextImage(name: string, arch: string, units: string[]): Buffer {
  return Buffer.from(`FLEXNODE-SANDBOX-SYSEXT\nname=${name}\narch=${arch}\nunits=${units.join(",")}\n# emulated systemd-sysext image: not a file system, never really merged.\n`);
}

async function tarball(files: Record<string, string>): Promise<Buffer> {
  const dir = await mkdtemp(join(tmpdir(), "flexnode-artifact-"));
  try {
    for (const [path, content] of Object.entries(files)) {
      await mkdir(join(dir, path, ".."), { recursive: true });
      await writeFile(join(dir, path), content, { mode: 0o755 });
    }
    const chunks: Buffer[] = [];
    // portable: no uid/gid/owner names from this machine in the archive.
    const stream = tar.create({ gzip: true, cwd: dir, portable: true }, Object.keys(files).map((p) => p.split("/")[0]!).filter((p, i, all) => all.indexOf(p) === i));
    for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
    return Buffer.concat(chunks);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
