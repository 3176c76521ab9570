/**
 * A self-signed server certificate for 127.0.0.1/localhost, generated once per process and shared by every HTTPS
 * listener, since key generation is the slow part of starting one. Clients trust it via `tlsOptions: { ca }`.
 */
import { generate } from "selfsigned";

export interface ServerCertificate {
  cert: string;
  key: string;
}

let pending: Promise<ServerCertificate> | undefined;

export function loopbackCertificate(): Promise<ServerCertificate> {
  pending ??= generate([{ name: "commonName", value: "localhost" }], {
    keyType: "ec",
    curve: "P-256",
    algorithm: "sha256",
    extensions: [
      { name: "basicConstraints", cA: false },
      { name: "keyUsage", digitalSignature: true, keyEncipherment: true },
      { name: "extKeyUsage", serverAuth: true },
      {
        name: "subjectAltName",
        altNames: [
          { type: 2, value: "localhost" },
          { type: 7, ip: "127.0.0.1" },
          { type: 7, ip: "::1" },
        ],
      },
    ],
  }).then((pems) => ({ cert: pems.cert, key: pems.private }));
  return pending;
}
