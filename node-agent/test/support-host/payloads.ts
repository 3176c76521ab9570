/**
 * Real artifacts for the plan: tar.gz archives built with the `tar` package (CNI's with "./" entries, as upstream
 * ships it), a kubelet "binary" and sysext "images" — deterministic pseudo-random bytes — each with the sha256 the
 * catalog pins, served by the test mirror.
 */
import { createHash } from "node:crypto";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import * as tar from "tar";
import type { ArtifactCatalog } from "../../../orchestrations/node-plan/node-plan.js";
import type { ArtifactServer } from "./artifact-server.js";

export function bytes(seed: string, size: number): Buffer {
  const out = Buffer.alloc(size);
  let block = createHash("sha256").update(seed).digest();
  for (let at = 0; at < size; at += block.length) {
    block.copy(out, at);
    block = createHash("sha256").update(block).digest();
  }
  return out;
}

export const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

async function tarGz(files: Record<string, Buffer>, prefix: string): Promise<Buffer> {
  const work = await mkdtemp(path.join(tmpdir(), "flexnode-artifact-"));
  const dir = path.join(work, "tree");
  try {
    for (const [name, content] of Object.entries(files)) {
      await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
      await writeFile(path.join(dir, name), content);
      await chmod(path.join(dir, name), 0o755);
    }
    const out = path.join(work, "out.tgz");
    await tar.c({ gzip: true, file: out, cwd: dir, portable: true, mtime: new Date("2025-01-01T00:00:00Z") }, [prefix]);
    return await readFile(out);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

export interface Payloads {
  containerd: Buffer;
  kubelet: Buffer;
  cni: Buffer;
  runc: Buffer;
  containerdSysext: Buffer;
  kubernetesSysext: Buffer;
}

export async function buildPayloads(scale = 1): Promise<Payloads> {
  const kb = (n: number) => Math.round(n * 1024 * scale);
  return {
    containerd: await tarGz(
      { "bin/containerd": bytes("containerd", kb(96)), "bin/containerd-shim-runc-v2": bytes("shim", kb(32)), "bin/ctr": bytes("ctr", kb(32)) },
      "bin",
    ),
    kubelet: bytes("kubelet", kb(128)),
    cni: await tarGz(
      { bridge: bytes("bridge", kb(24)), "host-local": bytes("host-local", kb(24)), loopback: bytes("loopback", kb(16)), portmap: bytes("portmap", kb(24)) },
      ".",
    ),
    runc: bytes("runc", kb(64)),
    containerdSysext: bytes("containerd.raw", kb(64)),
    kubernetesSysext: bytes("kubernetes.raw", kb(128)),
  };
}

/** Puts the payloads on the mirror and returns the catalog that pins them (both architectures share bytes). */
export function publish(server: ArtifactServer, p: Payloads): ArtifactCatalog {
  const art = (name: string, body: Buffer) => {
    server.put(name, body);
    return { url: server.url(name), sha256: sha256(body) };
  };
  const both = (name: string, body: Buffer) => ({ amd64: art(`amd64/${name}`, body), arm64: art(`arm64/${name}`, body) });
  return {
    containerd: both("containerd.tar.gz", p.containerd),
    kubernetes: { "1.31.2": both("kubelet", p.kubelet) },
    cniPlugins: both("cni-plugins.tgz", p.cni),
    runc: both("runc", p.runc),
    sysext: { containerd: both("containerd.raw", p.containerdSysext), kubernetes: { "1.31.2": both("kubernetes-1.31.2.raw", p.kubernetesSysext) } },
  };
}
