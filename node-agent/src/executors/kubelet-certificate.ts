/**
 * What a kubelet client certificate tells the service: the node it was issued to (subject O=system:nodes,
 * CN=system:node:<name>). A kubelet registers its Node under that name as soon as it holds the certificate, so the
 * saga can ask the API server for that Node at once and tell a kubelet that would register under another name from
 * one that is merely slow. Only the name leaves the node: the file also holds the kubelet's private key, which is
 * never parsed.
 */
import { X509Certificate } from "node:crypto";
import { lstat, readFile, readlink } from "node:fs/promises";
import * as path from "node:path";
import { resolveHostPath } from "../paths.js";

/** A client certificate with its key is a few KiB; a larger file is not one. */
const MAX_BYTES = 64 * 1024;
/** The kubelet names the current certificate through a symlink to a dated file; a chain longer than this is not its. */
const MAX_LINKS = 4;
const CERTIFICATE = /-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+-----END CERTIFICATE-----/;
/** A Kubernetes node name: a DNS subdomain. */
const NODE_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/**
 * The node name in the kubelet client certificate at `file` (a host path under `root`), or undefined when the file is
 * not one (any other file a waitFor step waits for, a certificate for another kind of client, unreadable).
 */
export async function kubeletNodeOf(root: string, file: string): Promise<string | undefined> {
  try {
    let { hostPath, fsPath } = await resolveHostPath(root, file, { write: false });
    for (let links = 0; (await lstat(fsPath)).isSymbolicLink(); links++) {
      if (links >= MAX_LINKS) return undefined;
      const target = await readlink(fsPath);
      ({ hostPath, fsPath } = await resolveHostPath(root, path.posix.resolve(path.posix.dirname(hostPath), target), { write: false }));
    }
    if ((await lstat(fsPath)).size > MAX_BYTES) return undefined;
    const pem = CERTIFICATE.exec(await readFile(fsPath, "utf8"))?.[0];
    if (!pem) return undefined;
    const subject = new X509Certificate(pem).subject.split("\n");
    if (!subject.includes("O=system:nodes")) return undefined;
    const name = subject.find((line) => line.startsWith("CN=system:node:"))?.slice("CN=system:node:".length);
    return name !== undefined && NODE_NAME.test(name) ? name : undefined;
  } catch {
    // The wait itself succeeded; a file that cannot be read as a certificate only means there is nothing to report.
    return undefined;
  }
}
