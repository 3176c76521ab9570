/**
 * The real squashfs systemd-sysext images the tier's artifact mirror serves in place of the sandbox's labelled text
 * stand-ins: containerd's (Debian's packages, built with the cached root) and Kubernetes' (the kubelet stand-in as
 * /usr/bin/kubelet, with the CSR endpoint's address and CA, built per run). Both carry an extension-release for this
 * host's OS release and architecture, named after the file the plan gives the image (`<name>.raw`).
 */
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseOsRelease, squash } from "../../node-agent/packaging/sysext.js";
import { KUBERNETES_VERSION } from "../sandbox/estate.js";
import type { HostRoot } from "./root-image.js";
import { sysextRelease } from "./root-image.js";

const here = dirname(fileURLToPath(import.meta.url));
export const KUBELET_STANDIN = join(here, "kubelet-standin.sh");
const ARCH = process.arch === "x64" ? "amd64" : "arm64";

/** Artifact names in the sandbox mirror (test/sandbox/artifact-server.ts) for this machine's architecture. */
export const MIRROR_NAMES = { containerd: `containerd-${ARCH}.raw`, kubernetes: `kubernetes-${KUBERNETES_VERSION}-${ARCH}.raw` } as const;

export async function kubernetesImage(o: { image: HostRoot; csrUrl: string; csrCa: string }): Promise<Buffer> {
  const work = await mkdtemp(join(tmpdir(), "flexnode-kube-sysext-"));
  try {
    const tree = join(work, "tree");
    const put = async (path: string, mode: number, content: string | { copyOf: string }) => {
      const target = join(tree, path);
      await mkdir(dirname(target), { recursive: true });
      if (typeof content === "string") await writeFile(target, content);
      else await copyFile(content.copyOf, target);
      await chmod(target, mode);
    };
    const name = `kubernetes-${KUBERNETES_VERSION}`;
    const osRelease = parseOsRelease(await readFile(join(o.image.root, "usr/lib/os-release"), "utf8"));
    await put("usr/bin/kubelet", 0o755, { copyOf: KUBELET_STANDIN });
    await put("usr/lib/flexnode-test/csr-ca.pem", 0o644, o.csrCa);
    await put("usr/lib/flexnode-test/kubelet-standin.conf", 0o644, `CSR_URL=${o.csrUrl}\nCSR_CA=/usr/lib/flexnode-test/csr-ca.pem\n`);
    await put(`usr/lib/extension-release.d/extension-release.${name}`, 0o644, sysextRelease({ osRelease, name, version: KUBERNETES_VERSION }));
    const image = join(work, "image.raw");
    await squash(tree, image);
    return await readFile(image);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

export async function containerdImage(image: HostRoot): Promise<Buffer> {
  return readFile(image.containerdImage);
}
