/**
 * TLS for the stand-ins' loopback servers, made at run time and never stored. Key generation is the slow part, so
 * each certificate is made once per process and shared by every listener that asks for it.
 *
 * - `caIssuedCertificate(hosts)`: a server certificate for 127.0.0.1, ::1, localhost and any extra host names, issued
 *   by the process's private test CA. Clients trust the CA (`ca`): an SDK's `tlsOptions: { ca }`, the agent's `ca` /
 *   caFile, a child process's `NODE_EXTRA_CA_CERTS`. Used by the Service Bus and Kubernetes emulators and the
 *   artifact mirrors (as on AKS, where the API server's certificate comes from the cluster's own CA).
 * - `selfSignedCertificate()`: a loopback certificate that is its own trust anchor (`ca === cert`), from no CA at all.
 *   Used by the ARM emulator, and by tests that need a server the test CA did not vouch for.
 */
import { generate } from "selfsigned";

export interface TlsCertificate {
  /** PEM to trust: the CA that issued `cert`, or `cert` itself when self-signed. */
  ca: string;
  cert: string;
  key: string;
}

const KEY = { keyType: "ec", curve: "P-256", algorithm: "sha256" } as const;
const SERVER_EXTENSIONS = [
  { name: "basicConstraints", cA: false },
  { name: "keyUsage", digitalSignature: true, keyEncipherment: true },
  { name: "extKeyUsage", serverAuth: true },
] as const;

const loopbackNames = (hosts: readonly string[]) => ({
  name: "subjectAltName" as const,
  altNames: [...hosts.map((value) => ({ type: 2 as const, value })), { type: 7 as const, ip: "127.0.0.1" }, { type: 7 as const, ip: "::1" }],
});

let authority: Promise<{ cert: string; key: string }> | undefined;
const issued = new Map<string, Promise<TlsCertificate>>();
let selfSigned: Promise<TlsCertificate> | undefined;

function testAuthority(): Promise<{ cert: string; key: string }> {
  authority ??= generate([{ name: "commonName", value: "flexnode test CA (made per run)" }], {
    ...KEY,
    extensions: [
      { name: "basicConstraints", cA: true, critical: true },
      { name: "keyUsage", keyCertSign: true, cRLSign: true, critical: true },
    ],
  }).then((pems) => ({ cert: pems.cert, key: pems.private }));
  return authority;
}

export function caIssuedCertificate(extraHosts: readonly string[] = []): Promise<TlsCertificate> {
  const hosts = [...new Set(["localhost", ...extraHosts.map((h) => h.toLowerCase())])].sort();
  const key = hosts.join(",");
  let pending = issued.get(key);
  if (!pending) {
    pending = (async () => {
      const ca = await testAuthority();
      const pems = await generate([{ name: "commonName", value: hosts[0] ?? "localhost" }], {
        ...KEY,
        ca,
        extensions: [...SERVER_EXTENSIONS, loopbackNames(hosts)],
      });
      return { ca: ca.cert, cert: pems.cert, key: pems.private };
    })();
    issued.set(key, pending);
  }
  return pending;
}

export function selfSignedCertificate(): Promise<TlsCertificate> {
  selfSigned ??= generate([{ name: "commonName", value: "localhost" }], { ...KEY, extensions: [...SERVER_EXTENSIONS, loopbackNames(["localhost"])] }).then(
    (pems) => ({
      ca: pems.cert,
      cert: pems.cert,
      key: pems.private,
    }),
  );
  return selfSigned;
}
