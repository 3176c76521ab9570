/**
 * The real-host tier's certificate endpoint: what the kubelet stand-in (kubelet-standin.sh) talks to for its TLS
 * bootstrap. It takes the request the way the API server does — `POST /apis/certificates.k8s.io/v1/
 * certificatesigningrequests`, the bootstrap token as the bearer credential, a PKCS#10 CSR in `spec.request` — and
 * decides with the Kubernetes emulator's own model of TLS bootstrap (`joinNode`: the token must authenticate, the
 * pool's RBAC must allow creating the CSR and its auto-approval), which also registers the Node with its labels. An
 * approved CSR is signed at once (the create answer carries `status.certificate`; a real kubelet watches for it).
 *
 * Not the emulator itself: the emulator does not model CSR objects (its README), and this tier keeps its additions
 * out of the shared stand-ins. It signs with its own CA (openssl), since the emulator keeps its cluster CA key
 * private; nothing in the tier verifies kubelet client certificates.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generate } from "selfsigned";
import { runTool } from "../../node-agent/packaging/run-tool.js";
import type { KubeEmulator } from "../kube-emulator/index.js";

const CSR_PATH = "/apis/certificates.k8s.io/v1/certificatesigningrequests";
const KUBELET_SIGNER = "kubernetes.io/kube-apiserver-client-kubelet";

export interface CsrDecision {
  node: string;
  outcome: "issued" | "refused";
  reason?: string;
}

export interface CsrEndpoint {
  url: string;
  port: number;
  /** PEM of the CA the endpoint's TLS certificate (and the issued client certificates) chain to. */
  ca: string;
  readonly decisions: CsrDecision[];
  close(): Promise<void>;
}

export async function startCsrEndpoint(options: { kube: () => KubeEmulator }): Promise<CsrEndpoint> {
  const work = await mkdtemp(join(tmpdir(), "flexnode-csr-"));
  const ca = await generate([{ name: "commonName", value: "flexnode real-host tier kubelet CA (test)" }], {
    keyType: "ec",
    curve: "P-256",
    algorithm: "sha256",
    extensions: [
      { name: "basicConstraints", cA: true, critical: true },
      { name: "keyUsage", keyCertSign: true, cRLSign: true, critical: true },
    ],
  });
  const leaf = await generate([{ name: "commonName", value: "127.0.0.1" }], {
    keyType: "ec",
    curve: "P-256",
    algorithm: "sha256",
    ca: { cert: ca.cert, key: ca.private },
    extensions: [
      { name: "basicConstraints", cA: false },
      { name: "extKeyUsage", serverAuth: true },
      { name: "subjectAltName", altNames: [{ type: 7, ip: "127.0.0.1" }] },
    ],
  });
  await writeFile(join(work, "ca.pem"), ca.cert);
  await writeFile(join(work, "ca.key"), ca.private, { mode: 0o600 });
  const decisions: CsrDecision[] = [];

  const answer = (status: number, body: object): { status: number; body: string } => ({ status, body: JSON.stringify(body) });
  const statusError = (code: number, reason: string, message: string) =>
    answer(code, { kind: "Status", apiVersion: "v1", status: "Failure", reason, message, code });

  const handle = async (method: string, path: string, authorization: string | undefined, text: string): Promise<{ status: number; body: string }> => {
    if (path !== CSR_PATH) return statusError(404, "NotFound", `${path} is not served here`);
    if (method !== "POST") return statusError(405, "MethodNotAllowed", `${method} ${path}`);
    const token = /^Bearer\s+(\S+)$/.exec(authorization ?? "")?.[1];
    if (!token) return statusError(401, "Unauthorized", "no bearer token");
    let csr: { metadata?: { annotations?: Record<string, string> }; spec?: { request?: string; signerName?: string } };
    try {
      csr = JSON.parse(text) as typeof csr;
    } catch {
      return statusError(400, "BadRequest", "not JSON");
    }
    if (csr.spec?.signerName !== KUBELET_SIGNER) return statusError(422, "Invalid", `spec.signerName must be ${KUBELET_SIGNER}`);
    const dir = await mkdtemp(join(work, "req-"));
    try {
      const csrFile = join(dir, "csr.pem");
      await writeFile(csrFile, Buffer.from(csr.spec.request ?? "", "base64"));
      const parsed = await runTool("openssl", ["req", "-in", csrFile, "-noout", "-verify", "-subject", "-nameopt", "RFC2253"], { allowFailure: true });
      const subject = /^subject=(.*)$/m.exec(parsed.stdout)?.[1] ?? "";
      const cn = /(?:^|,)CN=([^,]+)/.exec(subject)?.[1];
      const org = /(?:^|,)O=([^,]+)/.exec(subject)?.[1];
      if (parsed.code !== 0 || !cn?.startsWith("system:node:") || org !== "system:nodes") {
        return statusError(422, "Invalid", `a kubelet client CSR needs CN=system:node:<name>, O=system:nodes (got ${subject || parsed.stderr.trim()})`);
      }
      const node = cn.slice("system:node:".length);
      const labels = Object.fromEntries(
        (csr.metadata?.annotations?.["flexnode.dev/node-labels"] ?? "")
          .split(",")
          .filter(Boolean)
          .map((kv) => kv.split("=", 2) as [string, string]),
      );
      const joined = options.kube().joinNode(node, { bootstrapToken: token, labels });
      if (!joined.joined) {
        decisions.push({ node, outcome: "refused", reason: joined.reason });
        return statusError(403, "Forbidden", joined.reason);
      }
      const certFile = join(dir, "cert.pem");
      await runTool("openssl", [
        "x509",
        "-req",
        "-in",
        csrFile,
        "-CA",
        join(work, "ca.pem"),
        "-CAkey",
        join(work, "ca.key"),
        "-days",
        "1",
        "-set_serial",
        `0x${randomBytes(8).toString("hex")}`,
        "-out",
        certFile,
      ]);
      decisions.push({ node, outcome: "issued" });
      return answer(201, {
        apiVersion: "certificates.k8s.io/v1",
        kind: "CertificateSigningRequest",
        metadata: { name: `node-csr-${randomBytes(4).toString("hex")}` },
        spec: { signerName: KUBELET_SIGNER, username: `system:bootstrap:${token.split(".")[0]}` },
        status: { conditions: [{ type: "Approved", status: "True", reason: "AutoApproved" }], certificate: (await readFile(certFile)).toString("base64") },
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  };

  const server: Server = createServer({ cert: leaf.cert, key: leaf.private }, (req, res) => {
    void (async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
      let reply: { status: number; body: string };
      try {
        reply = await handle(req.method ?? "GET", (req.url ?? "/").split("?")[0]!, req.headers.authorization, Buffer.concat(chunks).toString("utf8"));
      } catch (error) {
        reply = statusError(500, "InternalError", error instanceof Error ? error.message : String(error));
      }
      res.writeHead(reply.status, { "content-type": "application/json" }).end(reply.body);
    })();
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `https://127.0.0.1:${port}`,
    port,
    ca: ca.cert,
    decisions,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(work, { recursive: true, force: true });
    },
  };
}
