import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { KubeApiError, KubeClient, KubeTimeoutError } from "../../orchestrations/clients/kube/index.js";
import { selfSignedCertificate } from "../support/index.js";
import { ADMIN_TOKEN, rawRequest, startCluster, type Cluster } from "./test-fixtures.js";

const SECRETS = "/api/v1/namespaces/kube-system/secrets";
const opaque = { name: "s1", type: "Opaque", stringData: { k: "v" } };

describe("failure paths: the client reports, never retries", () => {
  let cluster: Cluster;
  beforeEach(async () => {
    cluster = await startCluster();
  });
  afterEach(() => cluster.close());

  it("answers an unknown or missing bearer token with a 401 Unauthorized Status", async () => {
    const error = await cluster
      .clientWith("not-a-known-token")
      .listSecrets("kube-system", "")
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KubeApiError);
    expect(error).toMatchObject({ status: 401, reason: "Unauthorized" });
    expect(await rawRequest(cluster.running, "GET", SECRETS)).toEqual({
      status: 401,
      body: { kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message: "Unauthorized", reason: "Unauthorized", code: 401 },
    });
    expect(cluster.emulator.requests.entries.map((e) => [e.status, e.user])).toEqual([
      [401, undefined],
      [401, undefined],
    ]);
  });

  it("turns an injected 503 into a KubeApiError after exactly one request", async () => {
    cluster.emulator.faults.inject({ method: "POST", path: SECRETS, status: 503, retryAfterSeconds: 1 });
    await expect(cluster.client.createSecret("kube-system", opaque)).rejects.toMatchObject({ status: 503, reason: "ServiceUnavailable" });
    expect(cluster.emulator.requests.entries).toHaveLength(1);
    expect(cluster.emulator.requests.entries[0]).toMatchObject({ faulted: "status", status: 503 });
    // The fault was for one request: the saga's retry gets through.
    expect(await cluster.client.createSecret("kube-system", opaque)).toBe("created");
  });

  it("passes an injected reason through", async () => {
    cluster.emulator.faults.inject({ path: `${SECRETS}/*`, status: 429, code: "TooManyRequests", times: 2 });
    await expect(cluster.client.getSecret("kube-system", "x")).rejects.toMatchObject({ status: 429, reason: "TooManyRequests" });
    await expect(cluster.client.deleteSecret("kube-system", "x")).rejects.toMatchObject({ status: 429 });
    expect(await cluster.client.deleteSecret("kube-system", "x")).toBe("absent");
  });

  it("times out a slow answer with KubeTimeoutError", async () => {
    const impatient = cluster.clientWith(ADMIN_TOKEN, { timeoutMs: 50 });
    cluster.emulator.faults.inject({ path: "/api/v1/nodes/slow", latencyMs: 400 });
    const error = await impatient.getNode("slow").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KubeTimeoutError);
    expect(error).toMatchObject({ code: "ETIMEDOUT" });
  });

  it("propagates a dropped connection as a network error, not a KubeApiError", async () => {
    cluster.emulator.faults.inject({ path: "/api/v1/nodes/n1", drop: true });
    const error = await cluster.client.getNode("n1").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect(error).not.toBeInstanceOf(KubeApiError);
    expect((error as NodeJS.ErrnoException).code).toBe("ECONNRESET");
  });

  it("refuses a server whose certificate the kubeconfig CA did not issue", async () => {
    const other = await selfSignedCertificate();
    const client = new KubeClient({ server: cluster.running.server, caPem: other.cert, token: ADMIN_TOKEN });
    try {
      const error = await client.getNode("n1").catch((e: unknown) => e);
      expect(error).not.toBeInstanceOf(KubeApiError);
      expect((error as NodeJS.ErrnoException).code).toMatch(/CERT|SIGNATURE|ISSUER/);
      expect(cluster.emulator.requests.entries).toEqual([]);
    } finally {
      client.close();
    }
  });

  it("answers unknown paths, unsupported methods and undecodable bodies as the API server does", async () => {
    expect(await rawRequest(cluster.running, "GET", "/api/v1/pods", { token: ADMIN_TOKEN })).toMatchObject({
      status: 404,
      body: { reason: "NotFound", message: "the server could not find the requested resource" },
    });
    expect(await rawRequest(cluster.running, "PUT", "/api/v1/nodes/n1", { token: ADMIN_TOKEN, body: {} })).toMatchObject({
      status: 405,
      body: { reason: "MethodNotAllowed" },
    });
    expect(await rawRequest(cluster.running, "POST", SECRETS, { token: ADMIN_TOKEN, body: { metadata: { name: 5 } } })).toMatchObject({
      status: 400,
      body: { reason: "BadRequest" },
    });
    expect(await rawRequest(cluster.running, "POST", SECRETS, { token: ADMIN_TOKEN, body: { metadata: { name: "x", namespace: "default" } } })).toMatchObject({
      status: 400,
      body: { message: "the namespace of the provided object does not match the namespace sent on the request" },
    });
  });

  it("maps a non-Status error body to client-go's reason for the code", () => {
    const error = KubeApiError.fromResponse("GET", "/api/v1/nodes/x", 502, "<html>Bad Gateway</html>");
    expect(error).toMatchObject({ status: 502, reason: "Unknown", details: undefined });
    expect(KubeApiError.fromResponse("GET", "/x", 503, undefined).reason).toBe("ServiceUnavailable");
    expect(error.message).toContain("Bad Gateway");
  });
});
