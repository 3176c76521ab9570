import { lstat, mkdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import * as path from "node:path";
import type { JsonObject } from "../../../contract/json.js";
import { generate } from "selfsigned";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startArtifactServer, type ArtifactServer } from "../support-host/artifact-server.js";
import { BOOTSTRAP_KUBECONFIG, BOOTSTRAP_REF, secretsOf } from "../support-host/plan.js";
import { hostUnderTest, type HostUnderTest } from "../support-host/step.js";
import { treeDiff } from "../support-host/tree-hash.js";
import type { SecretSource } from "../../src/ports.js";

let server: ArtifactServer;
const roots: string[] = [];
beforeAll(async () => {
  server = await startArtifactServer();
  server.put("readyz", Buffer.from("ok"));
});
afterAll(() => server.close());
afterEach(async () => {
  for (const r of roots.splice(0)) await rm(r, { recursive: true, force: true });
});
async function sandbox(o: { secrets?: SecretSource } = {}): Promise<HostUnderTest> {
  const h = await hostUnderTest({ ca: server.ca, ...o });
  roots.push(h.root);
  return h;
}

describe("waitFor", () => {
  it("waits for a file that appears later, and records nothing", async () => {
    const h = await sandbox();
    const file = path.join(h.root, "var/lib/kubelet/pki/kubelet-client-current.pem");
    setTimeout(() => void mkdir(path.dirname(file), { recursive: true }).then(() => writeFile(file, "cert")), 300).unref();
    const result = await h.run("waitFor", { file: "/var/lib/kubelet/pki/kubelet-client-current.pem", timeoutSeconds: 10 });
    expect(result).toMatchObject({ outcome: "succeeded", output: { ready: "/var/lib/kubelet/pki/kubelet-client-current.pem" } });
    expect(result.outcome === "succeeded" && Number(result.output.polls)).toBeGreaterThan(1);
    expect(result.outcome === "succeeded" && result.output).not.toHaveProperty("kubeletNode");
    expect((await h.manifest()).changes).toEqual([]);
  });

  it("says which node a kubelet client certificate names (the Node the kubelet registers), through the kubelet's symlink", async () => {
    const h = await sandbox();
    const pki = path.join(h.root, "var/lib/kubelet/pki");
    await mkdir(pki, { recursive: true });
    // As the kubelet leaves it: certificate and key in one dated file, named by an absolute symlink.
    const issued = await generate(
      [
        { name: "organizationName", value: "system:nodes" },
        { name: "commonName", value: "system:node:fn-0a1b2c" },
      ],
      { keyType: "ec", curve: "P-256", algorithm: "sha256" },
    );
    await writeFile(path.join(pki, "kubelet-client-2026-12-05-20-00-00.pem"), `${issued.cert}${issued.private}`, { mode: 0o600 });
    await symlink("/var/lib/kubelet/pki/kubelet-client-2026-12-05-20-00-00.pem", path.join(pki, "kubelet-client-current.pem"));
    const result = await h.run("waitFor", { file: "/var/lib/kubelet/pki/kubelet-client-current.pem", timeoutSeconds: 10 });
    expect(result).toMatchObject({ outcome: "succeeded", output: { ready: "/var/lib/kubelet/pki/kubelet-client-current.pem", kubeletNode: "fn-0a1b2c" } });
    // Nothing of the key leaves the node.
    expect(JSON.stringify(result)).not.toContain("PRIVATE KEY");

    // A certificate that is not a node's (here a kubelet serving certificate's subject) names no node.
    const other = await generate([{ name: "commonName", value: "fn-0a1b2c" }], { keyType: "ec", curve: "P-256", algorithm: "sha256" });
    await writeFile(path.join(pki, "kubelet.crt"), other.cert);
    const served = await h.run("waitFor", { file: "/var/lib/kubelet/pki/kubelet.crt", timeoutSeconds: 10 });
    expect(served.outcome === "succeeded" && served.output).not.toHaveProperty("kubeletNode");
  });

  it("times out with a retryable wait_timeout", async () => {
    const h = await sandbox();
    const result = await h.run("waitFor", { file: "/var/lib/never", timeoutSeconds: 1 });
    expect(result).toMatchObject({ outcome: "failed", error: { code: "wait_timeout", retryable: true } });
  });

  it("waits for a TCP port and an HTTPS URL (trusting the extra CA)", async () => {
    const h = await sandbox();
    const listener = createServer((s) => s.end());
    await new Promise<void>((r) => listener.listen(0, "127.0.0.1", r));
    const port = (listener.address() as { port: number }).port;
    try {
      expect(await h.run("waitFor", { tcp: { host: "127.0.0.1", port }, timeoutSeconds: 5 })).toMatchObject({ outcome: "succeeded" });
    } finally {
      listener.close();
    }
    expect(await h.run("waitFor", { url: server.url("readyz"), timeoutSeconds: 5 })).toMatchObject({ outcome: "succeeded" });
    expect(await h.run("waitFor", { url: server.url("missing"), timeoutSeconds: 1 })).toMatchObject({ outcome: "failed", error: { code: "wait_timeout" } });
  });

  it("needs exactly one thing to wait for", async () => {
    const h = await sandbox();
    for (const params of [
      { timeoutSeconds: 5 },
      { file: "/var/x", url: server.url("readyz"), timeoutSeconds: 5 },
      { file: "relative", timeoutSeconds: 5 },
      { file: "/var/x", timeoutSeconds: 0 },
    ] as JsonObject[]) {
      expect(await h.run("waitFor", params)).toMatchObject({ outcome: "failed", error: { code: "invalid_params" } });
    }
  });
});

describe("fetchSecret", () => {
  function oneTime(value: string): SecretSource & { taken: number } {
    let left: string | undefined = value;
    return {
      taken: 0,
      async take(ref) {
        this.taken += 1;
        if (ref !== BOOTSTRAP_REF || left === undefined) throw new Error(`secret ${ref} is gone`);
        const v = left;
        left = undefined;
        return v;
      },
    };
  }

  it("writes the secret 0600, takes it only once, keeps it out of log, result and manifest, and reset removes it", async () => {
    const secrets = oneTime(BOOTSTRAP_KUBECONFIG);
    const h = await sandbox({ secrets });
    const params = { secretRef: BOOTSTRAP_REF, path: "/var/lib/kubelet/bootstrap-kubeconfig", mode: "0600" };
    const first = await h.run("fetchSecret", params);
    expect(first).toMatchObject({ outcome: "succeeded", output: { written: true } });
    const file = path.join(h.root, "var/lib/kubelet/bootstrap-kubeconfig");
    expect(await readFile(file, "utf8")).toBe(BOOTSTRAP_KUBECONFIG);
    expect((await lstat(file)).mode & 0o7777).toBe(0o600);
    // Converged: the one-time secret is not asked for again.
    expect(await h.run("fetchSecret", params)).toMatchObject({ outcome: "succeeded", output: { written: false } });
    expect(secrets.taken).toBe(1);

    const token = "0123456789abcdef";
    expect(h.log.join("\n")).not.toContain(token);
    expect(JSON.stringify(first)).not.toContain(token);
    expect(await readFile(path.join(h.root, "var/lib/flexnode/manifest.json"), "utf8")).not.toContain(token);
    await h.reset();
    expect(treeDiff(h.original, await h.tree())).toEqual([]);
  });

  it("a secret that cannot be fetched fails retryably without writing anything", async () => {
    const h = await sandbox({ secrets: secretsOf({}) });
    const result = await h.run("fetchSecret", { secretRef: BOOTSTRAP_REF, path: "/var/lib/kubelet/bootstrap-kubeconfig" });
    expect(result).toMatchObject({ outcome: "failed", error: { code: "secret_unavailable", retryable: true } });
    await expect(lstat(path.join(h.root, "var/lib/kubelet/bootstrap-kubeconfig"))).rejects.toThrow(/ENOENT/);
    await h.reset();
    expect(treeDiff(h.original, await h.tree())).toEqual([]);
  });

  it("refuses a world-readable mode and a path under /usr", async () => {
    const h = await sandbox();
    expect(await h.run("fetchSecret", { secretRef: BOOTSTRAP_REF, path: "/var/lib/kubelet/bootstrap-kubeconfig", mode: "0644" })).toMatchObject({
      outcome: "failed",
      error: { code: "invalid_params" },
    });
    expect(await h.run("fetchSecret", { secretRef: BOOTSTRAP_REF, path: "/usr/lib/kubeconfig" })).toMatchObject({
      outcome: "failed",
      error: { code: "invalid_params" },
    });
    expect(treeDiff(h.original, await h.tree())).toEqual([]);
  });
});
