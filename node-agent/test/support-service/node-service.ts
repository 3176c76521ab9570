/**
 * The service's node-facing side, small enough to steer, for the mailbox loop's tests: `POST /api/enrol`, the signed
 * node API (requests verified with the contract's verifyNodeRequest and a nonce store, as functions/http/node-auth.ts
 * does) minting SAS tokens for the Service Bus emulator with a lifetime the test chooses (the real Mailbox refuses
 * anything under 45 minutes, which no test can wait out), and a step sender that signs envelopes with the service key.
 * Enrolment itself is tested against the real function app (enrol.test.ts); this stands in for it where the test is
 * about the loop.
 */
import { createHash, generateKeyPairSync, randomBytes, type KeyObject } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { ServiceBusAdministrationClient, ServiceBusClient } from "@azure/service-bus";
import { exportPublicKey, importPublicKey, keyIdOf } from "../../../contract/keys.js";
import { verifyNodeRequest } from "../../../contract/node-request.js";
import type { NonceStore } from "../../../contract/nonce-store.js";
import { buildStepEnvelope, type StepEnvelope, type StepKind } from "../../../contract/step-envelope.js";
import type { JsonObject } from "../../../contract/json.js";
import { DEFAULT_RULE, ServiceBusEmulator, signSasToken, type RunningEmulator } from "../../../test/servicebus-emulator/index.js";

export const RESULTS_QUEUE = "node-results";

export interface NodeServiceOptions {
  /** Node SAS token lifetime and when the node is told to refresh, ms from issue. */
  sasLifetimeMs?: number;
  refreshAfterMs?: number;
  /** Lock duration of node queues, ms. */
  lockDurationMs?: number;
}

interface NodeRecord {
  nodeId: string;
  publicKey: string;
  keyId: string;
  status: string;
}

export interface NodeService {
  url: string;
  sb: RunningEmulator;
  emulator: ServiceBusEmulator;
  serviceKey: KeyObject;
  nodes: Map<string, NodeRecord>;
  /** Node API calls by path, for assertions ("credentials were refreshed twice"). */
  calls: string[];
  /** Mailbox credentials minted so far, newest last (expiry of each). */
  minted: { nodeId: string; expiresAt: string }[];
  secrets: Map<string, string>;
  /** While true, every node API request gets 503 (a service outage). */
  down: boolean;
  issueToken(options?: { approval?: boolean }): string;
  /** Signs and sends one step envelope to the node's queue; returns it. */
  sendStep(
    nodeId: string,
    step: { stepId: string; kind?: StepKind; params?: JsonObject; attempt?: number; sagaId?: string; validForMs?: number },
  ): Promise<StepEnvelope>;
  /** Sends any body as-is (for envelopes the agent must refuse). */
  sendRaw(nodeId: string, body: unknown): Promise<void>;
  options: Required<NodeServiceOptions>;
  close(): Promise<void>;
}

const LISTEN_RULE = { name: "flexnode-node-listen", key: randomBytes(32).toString("base64") };
const SEND_RULE = { name: "flexnode-node-send", key: randomBytes(32).toString("base64") };

class MemoryNonces implements NonceStore {
  private readonly seen = new Set<string>();
  async claim(entry: { keyId: string; nonce: string; expiresAt: Date }): Promise<boolean> {
    const key = `${entry.keyId}/${entry.nonce}`;
    if (this.seen.has(key)) return false;
    this.seen.add(key);
    return true;
  }
}

export async function startNodeService(opts: NodeServiceOptions = {}): Promise<NodeService> {
  const options: Required<NodeServiceOptions> = { sasLifetimeMs: 2 * 3600_000, refreshAfterMs: 3600_000, lockDurationMs: 30_000, ...opts };
  const emulator = new ServiceBusEmulator({
    rules: [DEFAULT_RULE, { ...LISTEN_RULE, rights: ["Listen"] }, { ...SEND_RULE, rights: ["Send"] }],
    queues: [{ name: RESULTS_QUEUE }],
  });
  const sb = await emulator.start();
  const admin = new ServiceBusAdministrationClient(sb.connectionString(), sb.adminClientOptions());
  const client = new ServiceBusClient(sb.connectionString());
  const serviceKey = generateKeyPairSync("ed25519").privateKey;
  const nodes = new Map<string, NodeRecord>();
  const tokens = new Map<string, { approval: boolean }>();
  const nonces = new MemoryNonces();
  const calls: string[] = [];
  const minted: NodeService["minted"] = [];
  const secrets = new Map<string, string>();

  const mailboxFor = (nodeId: string) => {
    const now = Date.now();
    const expiresAt = new Date(now + options.sasLifetimeMs);
    const queue = `node-${nodeId}`;
    const token = (entity: string, rule: { name: string; key: string }) =>
      signSasToken({ resourceUri: `${sb.endpoint}/${entity}`, keyName: rule.name, key: rule.key, expiresAtSeconds: expiresAt.getTime() / 1000 });
    minted.push({ nodeId, expiresAt: expiresAt.toISOString() });
    return {
      namespace: sb.credentialNamespace,
      queue,
      resultsQueue: RESULTS_QUEUE,
      listenSas: token(queue, LISTEN_RULE),
      sendSas: token(RESULTS_QUEUE, SEND_RULE),
      // SAS expiry has whole seconds; report what the token says.
      expiresAt: new Date(Math.floor(expiresAt.getTime() / 1000) * 1000).toISOString(),
      refreshAfter: new Date(now + options.refreshAfterMs).toISOString(),
    };
  };

  const json = (status: number, body: unknown) => ({
    status,
    body: JSON.stringify(body),
    type: status >= 400 ? "application/problem+json" : "application/json",
  });
  const problem = (status: number, slug: string, title: string) => json(status, { type: `https://flexnode.dev/problems/${slug}`, title, status });

  async function handle(method: string, url: string, headers: Record<string, string | string[] | undefined>, body: Buffer) {
    const path = url.split("?")[0]!;
    if (method === "POST" && path === "/api/enrol") {
      const req = JSON.parse(body.toString("utf8")) as { token: string; facts: { machineId: string }; publicKey: string };
      // Proof of possession, as the service asks: signed by the key the request registers.
      try {
        await verifyNodeRequest(
          { method, url, headers, body },
          { now: new Date(), nonceStore: nonces, lookupPublicKey: (keyId) => (keyId === keyIdOf(req.publicKey) ? importPublicKey(req.publicKey) : undefined) },
        );
      } catch (error) {
        return problem(401, "signature-invalid", (error as Error).message);
      }
      const token = tokens.get(req.token);
      if (!token) return problem(403, "token-unknown", "Unknown token");
      const nodeId = `fn-${createHash("sha256").update(req.facts.machineId).digest("hex").slice(0, 24)}`;
      const existing = nodes.get(nodeId);
      const record = existing ?? { nodeId, publicKey: req.publicKey, keyId: keyIdOf(req.publicKey), status: token.approval ? "AwaitingApproval" : "Enrolling" };
      nodes.set(nodeId, record);
      if (!(await admin.queueExists(`node-${nodeId}`)))
        await admin.createQueue(`node-${nodeId}`, { lockDuration: `PT${options.lockDurationMs / 1000}S`, maxDeliveryCount: 5 });
      const waiting = record.status === "AwaitingApproval";
      return json(existing ? 200 : waiting ? 202 : 201, {
        nodeId,
        pool: "edge",
        status: record.status,
        keyId: record.keyId,
        ...(waiting ? { approval: "approval-required" } : {}),
        nodeApi: { statusPath: "/api/node/status", mailboxCredentialsPath: "/api/node/mailbox-credentials" },
        poll: { intervalSeconds: 1 },
        service: { publicKey: exportPublicKey(serviceKey), keyId: keyIdOf(serviceKey) },
        ...(waiting ? {} : { mailbox: mailboxFor(nodeId) }),
      });
    }
    if (!path.startsWith("/api/node/")) return problem(404, "not-found", "No such route");
    if (service.down) return problem(503, "unavailable", "Service unavailable");
    let node: NodeRecord | undefined;
    try {
      await verifyNodeRequest(
        { method, url, headers, body },
        {
          now: new Date(),
          nonceStore: nonces,
          lookupPublicKey: (keyId) => {
            node = [...nodes.values()].find((n) => n.keyId === keyId);
            return node ? importPublicKey(node.publicKey) : undefined;
          },
        },
      );
    } catch (error) {
      return problem(401, "signature-invalid", (error as Error).message);
    }
    calls.push(`${method} ${path}`);
    const n = node!;
    if (method === "GET" && path === "/api/node/status")
      return json(200, { nodeId: n.nodeId, pool: "edge", status: n.status, updatedAt: new Date().toISOString() });
    if (method === "POST" && path === "/api/node/mailbox-credentials") {
      if (n.status === "AwaitingApproval" || n.status === "Failed" || n.status === "Offboarded")
        return problem(409, "no-mailbox", "This node has no mailbox in its current state");
      return json(200, mailboxFor(n.nodeId));
    }
    const secret = /^\/api\/node\/secrets\/([a-z0-9.-]+)$/.exec(path);
    if (method === "POST" && secret) {
      const key = `${n.nodeId}/${secret[1]}`;
      const value = secrets.get(key);
      if (value === undefined) return problem(404, "not-found", "No such secret");
      secrets.delete(key);
      return json(200, { ref: secret[1], value });
    }
    return problem(404, "not-found", "No such route");
  }

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      handle(req.method ?? "GET", req.url ?? "/", req.headers, Buffer.concat(chunks)).then(
        (r) => res.writeHead(r.status, { "content-type": r.type }).end(r.body),
        (error: unknown) => res.writeHead(500).end(String(error)),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const service: NodeService = {
    down: false,
    url,
    sb,
    emulator,
    serviceKey,
    nodes,
    calls,
    minted,
    secrets,
    options,
    issueToken: ({ approval = false } = {}) => {
      const token = `fnt.${randomBytes(8).toString("hex")}.${randomBytes(32).toString("base64url")}`;
      tokens.set(token, { approval });
      return token;
    },
    sendStep: async (nodeId, step) => {
      const issuedAt = new Date();
      const envelope = buildStepEnvelope(
        {
          nodeId,
          sagaId: step.sagaId ?? `${nodeId}@1`,
          stepId: step.stepId,
          attempt: step.attempt ?? 1,
          kind: step.kind ?? "writeFiles",
          params: step.params ?? {},
          issuedAt,
          expiresAt: new Date(issuedAt.getTime() + (step.validForMs ?? 600_000)),
        },
        { privateKey: serviceKey },
      );
      const sender = client.createSender(`node-${nodeId}`);
      await sender.sendMessages({ body: envelope, contentType: "application/json", messageId: `${envelope.stepId}/${envelope.attempt}` });
      await sender.close();
      return envelope;
    },
    sendRaw: async (nodeId, body) => {
      const sender = client.createSender(`node-${nodeId}`);
      await sender.sendMessages({ body, contentType: "application/json" });
      await sender.close();
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await client.close();
      await emulator.stop();
    },
  };
  return service;
}
