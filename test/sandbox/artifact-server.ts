/**
 * The sandbox's artifact mirror: an HTTPS server on 127.0.0.1 with a certificate from its own private CA (made at
 * start, never stored), serving small but real artifacts — gzip'd tarballs with the layout of the containerd and CNI
 * release archives, a kubelet and a runc file, and sysext image files — whose sha256 digests become the `ARTIFACT_CATALOG`.
 * The binaries inside are labelled shell scripts: nothing is ever executed, the agent only places them.
 *
 * Failure injection: `corrupt(name)` serves the artifact with one byte flipped (same length), so a node's digest check
 * fails exactly as it would against a tampered or truncated mirror. `hold(name)` keeps the next requests for an
 * artifact waiting until released, so a test can act while a node is inside the step that downloads it.
 *
 * `replace` serves given bytes instead of a stand-in (the real-host tier's squashfs sysext images); the catalog then
 * pins their digests.
 */
import { createHash } from "node:crypto";
import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tar from "tar";
import type { ArtifactCatalog } from "../../orchestrations/node-plan/node-plan.js";
import { byteRange, caIssuedCertificate } from "../support/index.js";

export interface ServedArtifact {
  name: string;
  bytes: Buffer;
  sha256: string;
}

export interface ArtifactRequest {
  name: string;
  range: string | undefined;
  status: number;
  bytes: number;
}

export interface ArtifactServer {
  origin: string;
  /** PEM of the private CA that signed the server certificate: what the agent gets as its extra CA. */
  ca: string;
  catalog: ArtifactCatalog;
  artifacts: ReadonlyMap<string, ServedArtifact>;
  readonly requests: readonly ArtifactRequest[];
  /** Serves `name` with one byte flipped from now on (every node that fetches it sees a digest mismatch). */
  corrupt(name: string): void;
  /**
   * Holds every request for `name` from now on until `release()`; `requested` resolves when the first one arrives.
   * Held requests whose client went away are dropped.
   */
  hold(name: string): { requested: Promise<void>; release(): void };
  /** The artifact name behind a catalog URL. */
  nameOf(url: string): string | undefined;
  close(): Promise<void>;
}

const ARCHES = ["amd64", "arm64"] as const;

export interface ArtifactServerOptions {
  kubernetesVersion: string;
  /** Bytes to serve instead of the stand-in of the same name (e.g. `containerd-amd64.raw`). */
  replace?: Readonly<Record<string, Buffer>>;
}

export async function startArtifactServer(options: ArtifactServerOptions): Promise<ArtifactServer> {
  const artifacts = new Map<string, ServedArtifact>();
  const add = (name: string, bytes: Buffer) => artifacts.set(name, { name, bytes, sha256: createHash("sha256").update(bytes).digest("hex") });
  const v = options.kubernetesVersion;
  for (const arch of ARCHES) {
    add(
      `containerd-${arch}.tar.gz`,
      await tarball({
        "bin/containerd": stub(`containerd ${arch}`),
        "bin/containerd-shim-runc-v2": stub(`containerd-shim-runc-v2 ${arch}`),
        "bin/ctr": stub(`ctr ${arch}`),
      }),
    );
    add(`kubelet-${v}-${arch}`, Buffer.from(stub(`kubelet v${v} ${arch}`)));
    // runc is released as a bare executable per architecture (runc.amd64), not inside containerd's tarball.
    add(`runc.${arch}`, Buffer.from(stub(`runc ${arch}`)));
    add(
      `cni-plugins-${arch}.tgz`,
      await tarball({
        bridge: stub(`CNI bridge ${arch}`),
        "host-local": stub(`CNI host-local ${arch}`),
        loopback: stub(`CNI loopback ${arch}`),
        portmap: stub(`CNI portmap ${arch}`),
      }),
    );
    add(`containerd-${arch}.raw`, sysextImage("containerd", arch, ["containerd.service"]));
    add(`kubernetes-${v}-${arch}.raw`, sysextImage(`kubernetes-${v}`, arch, []));
    // The agent itself, as join configs download it (the sandbox's nodes run the agent from this repo instead).
    add(`flexnode-agent-${arch}`, Buffer.from(stub(`flexnode-agent ${arch}`)));
    add(`flexnode-agent-${arch}.raw`, sysextImage("flexnode-agent", arch, ["flexnode-agent.service"]));
  }
  for (const [name, bytes] of Object.entries(options.replace ?? {})) {
    if (!artifacts.has(name)) throw new Error(`no artifact ${name} to replace (known: ${[...artifacts.keys()].join(", ")})`);
    add(name, bytes);
  }

  const tls = await caIssuedCertificate();
  const corrupted = new Set<string>();
  const requests: ArtifactRequest[] = [];
  const holds = new Map<string, { arrived: () => void; released: Promise<void> }>();
  const server: Server = createServer({ cert: tls.cert, key: tls.key }, (req, res) => {
    const name = decodeURIComponent(new URL(req.url ?? "/", "https://127.0.0.1").pathname.replace(/^\/artifacts\//, ""));
    const held = holds.get(name);
    if (held) {
      held.arrived();
      void held.released.then(() => {
        if (!req.destroyed && !res.destroyed) serve(req, res, name);
      });
      return;
    }
    serve(req, res, name);
  });
  function serve(req: IncomingMessage, res: ServerResponse, name: string): void {
    const artifact = artifacts.get(name);
    const range = req.headers.range;
    const log = (status: number, bytes: number) => requests.push({ name, range, status, bytes });
    if (!artifact || (req.method !== "GET" && req.method !== "HEAD")) {
      const status = artifact ? 405 : 404;
      log(status, 0);
      res.writeHead(status).end();
      return;
    }
    let body = artifact.bytes;
    if (corrupted.has(name)) {
      body = Buffer.from(body);
      body[body.length - 1] = body[body.length - 1]! ^ 0xff;
    }
    const answer = byteRange(body, range);
    if (answer.status === 416) {
      log(416, 0);
      res.writeHead(416, answer.headers).end();
      return;
    }
    const { status, slice } = answer;
    res.writeHead(status, { ...answer.headers, etag: `"${artifact.sha256}"` });
    log(status, req.method === "HEAD" ? 0 : slice.length);
    res.end(req.method === "HEAD" ? undefined : slice);
  }
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const origin = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const entry = (name: string) => {
    const a = artifacts.get(name)!;
    return { url: `${origin}/artifacts/${encodeURIComponent(name)}`, sha256: a.sha256 };
  };
  const byArch = (name: (arch: string) => string) => Object.fromEntries(ARCHES.map((arch) => [arch, entry(name(arch))]));
  const catalog: ArtifactCatalog = {
    containerd: byArch((a) => `containerd-${a}.tar.gz`),
    kubernetes: { [v]: byArch((a) => `kubelet-${v}-${a}`) },
    cniPlugins: byArch((a) => `cni-plugins-${a}.tgz`),
    runc: byArch((a) => `runc.${a}`),
    sysext: { containerd: byArch((a) => `containerd-${a}.raw`), kubernetes: { [v]: byArch((a) => `kubernetes-${v}-${a}.raw`) } },
    agent: { version: "0.1.0", executable: byArch((a) => `flexnode-agent-${a}`), sysext: byArch((a) => `flexnode-agent-${a}.raw`) },
  };
  return {
    origin,
    ca: tls.ca,
    catalog,
    artifacts,
    requests,
    corrupt: (name) => {
      if (!artifacts.has(name)) throw new Error(`no artifact ${name}`);
      corrupted.add(name);
    },
    hold: (name) => {
      if (!artifacts.has(name)) throw new Error(`no artifact ${name}`);
      let arrived!: () => void;
      let release!: () => void;
      const requested = new Promise<void>((resolve) => (arrived = resolve));
      const released = new Promise<void>((resolve) => (release = resolve));
      holds.set(name, { arrived, released });
      return {
        requested,
        release: () => {
          holds.delete(name);
          release();
        },
      };
    },
    nameOf: (url) => (url.startsWith(`${origin}/artifacts/`) ? decodeURIComponent(url.slice(`${origin}/artifacts/`.length)) : undefined),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A labelled stand-in for a binary: placed with its mode by the agent, never run. */
const stub = (what: string): string =>
  `#!/bin/sh\n# ${what}: an emulated artifact of the flexnode local sandbox, not the real program.\necho "emulated ${what}"\n`;

/**
 * A sysext image stand-in. Real images are squashfs/erofs file systems that systemd-sysext merges over /usr; in the
 * sandbox systemd-sysext itself is simulated (simulated-host.ts), so the image is a labelled text file naming the
 * unit files the real image would ship in usr/lib/systemd/system.
 */
function sysextImage(name: string, arch: string, units: string[]): Buffer {
  return Buffer.from(
    `FLEXNODE-SANDBOX-SYSEXT\nname=${name}\narch=${arch}\nunits=${units.join(",")}\n# emulated systemd-sysext image: not a file system, never really merged.\n`,
  );
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
    const stream = tar.create(
      { gzip: true, cwd: dir, portable: true },
      Object.keys(files)
        .map((p) => p.split("/")[0]!)
        .filter((p, i, all) => all.indexOf(p) === i),
    );
    for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
    return Buffer.concat(chunks);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
