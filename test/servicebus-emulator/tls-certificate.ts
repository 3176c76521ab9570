/**
 * A private CA and a server certificate it signs for 127.0.0.1, ::1, localhost and any extra host names. Generated
 * once per process and host set (key generation is the slow part). Clients trust the CA: the administration client
 * with `tlsOptions: { ca }`, a child process with `NODE_EXTRA_CA_CERTS=<ca file>`.
 */
import { generate } from "selfsigned";

export interface EmulatorCertificates {
  /** PEM of the CA to trust. */
  ca: string;
  cert: string;
  key: string;
}

let authority: Promise<{ cert: string; key: string }> | undefined;
const issued = new Map<string, Promise<EmulatorCertificates>>();

export function emulatorCertificates(extraHosts: readonly string[] = []): Promise<EmulatorCertificates> {
  const hosts = [...new Set(["localhost", ...extraHosts.map((h) => h.toLowerCase())])].sort();
  const key = hosts.join(",");
  let pending = issued.get(key);
  if (!pending) {
    pending = issue(hosts);
    issued.set(key, pending);
  }
  return pending;
}

function certificateAuthority(): Promise<{ cert: string; key: string }> {
  authority ??= generate([{ name: "commonName", value: "Service Bus emulator test CA" }], {
    keyType: "ec",
    curve: "P-256",
    algorithm: "sha256",
    extensions: [
      { name: "basicConstraints", cA: true, critical: true },
      { name: "keyUsage", keyCertSign: true, cRLSign: true, critical: true },
    ],
  }).then((pems) => ({ cert: pems.cert, key: pems.private }));
  return authority;
}

async function issue(hosts: readonly string[]): Promise<EmulatorCertificates> {
  const ca = await certificateAuthority();
  const pems = await generate([{ name: "commonName", value: hosts[0] ?? "localhost" }], {
    keyType: "ec",
    curve: "P-256",
    algorithm: "sha256",
    ca,
    extensions: [
      { name: "basicConstraints", cA: false },
      { name: "keyUsage", digitalSignature: true, keyEncipherment: true },
      { name: "extKeyUsage", serverAuth: true },
      {
        name: "subjectAltName",
        altNames: [...hosts.map((value) => ({ type: 2 as const, value })), { type: 7, ip: "127.0.0.1" }, { type: 7, ip: "::1" }],
      },
    ],
  });
  return { ca: ca.cert, cert: pems.cert, key: pems.private };
}
