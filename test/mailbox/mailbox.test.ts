import { generateKeyPairSync, randomBytes } from "node:crypto";
import { AzureSASCredential } from "@azure/core-auth";
import { ServiceBusAdministrationClient, ServiceBusClient, type ServiceBusReceivedMessage } from "@azure/service-bus";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { exportPublicKey } from "../../contract/keys.js";
import { findSecrets } from "../../contract/secrets.js";
import { buildStepEnvelope, verifyStepEnvelope, type StepEnvelope } from "../../contract/step-envelope.js";
import {
  DEFAULT_SAS_LIFETIME_MS,
  Mailbox,
  MailboxQuotaError,
  queueFor,
  REJECTED_RESULTS_QUEUE,
  RESULTS_QUEUE,
  SecretInEnvelopeError,
  type NodeMailboxCredentials,
} from "../../orchestrations/clients/mailbox/mailbox.js";
import { ManualClock } from "../support/index.js";
import { DEFAULT_RULE, ServiceBusEmulator, type RunningEmulator } from "../servicebus-emulator/index.js";

const listenRule = { name: "flexnode-node-listen", key: randomBytes(32).toString("base64") };
const sendRule = { name: "flexnode-node-send", key: randomBytes(32).toString("base64") };
const serviceKey = generateKeyPairSync("ed25519").privateKey;
const NO_RETRY = { retryOptions: { maxRetries: 0, timeoutInMs: 3000 } };

let clock: ManualClock;
let emulator: ServiceBusEmulator;
let sb: RunningEmulator;
let mailbox: Mailbox;
let service: ServiceBusClient;
const clients: ServiceBusClient[] = [];

async function start(queue: ConstructorParameters<typeof Mailbox>[0]["queue"] = {}) {
  clock = new ManualClock(Date.now());
  emulator = new ServiceBusEmulator({
    rules: [DEFAULT_RULE, { ...listenRule, rights: ["Listen"] }, { ...sendRule, rights: ["Send"] }],
    queues: [{ name: RESULTS_QUEUE }, { name: REJECTED_RESULTS_QUEUE }],
    clock,
    maxQueues: 5,
  });
  sb = await emulator.start();
  service = new ServiceBusClient(sb.connectionString());
  mailbox = new Mailbox({
    client: service,
    admin: new ServiceBusAdministrationClient(sb.connectionString(), sb.adminClientOptions()),
    namespaceUri: sb.endpoint,
    nodeNamespace: sb.credentialNamespace,
    listenRule,
    sendRule,
    queue,
  });
}
beforeEach(() => start());
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await service.close();
  await emulator.stop();
});

/** The agent's side: a client on the node's SAS token, built the way the agent builds it. */
function agentClient(sas: string, options: { retries?: boolean } = {}): { client: ServiceBusClient; credential: AzureSASCredential } {
  const credential = new AzureSASCredential(sas);
  // Refusals are asserted without the SDK's retries; the long-lived receiver keeps them, as the agent does.
  const client = new ServiceBusClient(sb.credentialNamespace, credential, options.retries ? {} : NO_RETRY);
  clients.push(client);
  return { client, credential };
}

function envelope(nodeId: string, stepId = "s1", params: Record<string, unknown> = { files: [{ path: "/etc/flexnode/a.conf", mode: "0644" }] }): StepEnvelope {
  const issuedAt = new Date(clock.now());
  return buildStepEnvelope(
    { nodeId, sagaId: nodeId, stepId, attempt: 1, kind: "writeFiles", params: params as never, issuedAt, expiresAt: new Date(issuedAt.getTime() + 600_000) },
    { privateKey: serviceKey },
  );
}

const creds = (nodeId: string): NodeMailboxCredentials => mailbox.credentialsFor(nodeId, new Date(clock.now()));

describe("mailbox queues (Service Bus data plane, not ARM)", () => {
  it("opens and closes idempotently, with the node queue's settings", async () => {
    expect(await mailbox.open("fn-a")).toEqual({ queue: "node-fn-a", created: true });
    expect(await mailbox.open("fn-a")).toEqual({ queue: "node-fn-a", created: false });
    const admin = new ServiceBusAdministrationClient(sb.connectionString(), sb.adminClientOptions());
    expect(await admin.getQueue("node-fn-a")).toMatchObject({
      lockDuration: "PT1M",
      maxDeliveryCount: 5,
      defaultMessageTimeToLive: "PT2H",
      deadLetteringOnMessageExpiration: true,
    });
    expect(await mailbox.close("fn-a")).toEqual({ queue: "node-fn-a", deleted: true });
    expect(await mailbox.close("fn-a")).toEqual({ queue: "node-fn-a", deleted: false });
    expect(await admin.queueExists("node-fn-a")).toBe(false);
  });

  it("takes only 'already exists' for an existing queue: a conflicting operation in progress is thrown, to be tried again", async () => {
    emulator.adminFaults.inject({
      method: "PUT",
      path: /^\/?node-fn-a$/,
      status: 409,
      message: "SubCode=40901. Another conflicting operation is in progress on the same resource/entity.",
    });
    await expect(mailbox.open("fn-a")).rejects.toMatchObject({ statusCode: 409, code: "ServiceError" });
    expect(await mailbox.open("fn-a")).toEqual({ queue: "node-fn-a", created: true });
  });

  it("says the namespace is full when its queue quota is reached", async () => {
    // maxQueues 5: the two results queues and three nodes.
    for (const n of ["fn-a", "fn-b", "fn-c"]) await mailbox.open(n);
    const full = await mailbox.open("fn-d").catch((e: unknown) => e);
    expect(full).toBeInstanceOf(MailboxQuotaError);
    expect((full as Error).message).toMatch(/no room for another node queue.*SubCode=40300/);
    // A queue that exists is still found, and a freed slot is usable again.
    expect(await mailbox.open("fn-a")).toEqual({ queue: "node-fn-a", created: false });
    await mailbox.close("fn-c");
    expect(await mailbox.open("fn-d")).toEqual({ queue: "node-fn-d", created: true });
  });
});

describe("entity names", () => {
  it("never extend one another, since a SAS token covers every URI its own is a prefix of", () => {
    const names = [RESULTS_QUEUE, REJECTED_RESULTS_QUEUE, queueFor("fn-0123456789abcdef01234567"), queueFor("fn-fedcba9876543210fedcba98")];
    const extending = names.flatMap((a) => names.filter((b) => a !== b && b.toLowerCase().startsWith(a.toLowerCase())).map((b) => `${b} extends ${a}`));
    expect(extending).toEqual([]);
  });
});

describe("node tokens", () => {
  it("let a node receive only from its own queue and send only to node-results", async () => {
    await mailbox.open("fn-a");
    await mailbox.open("fn-b");
    await mailbox.send(envelope("fn-a"));
    await mailbox.send(envelope("fn-b"));
    const a = creds("fn-a");

    const listen = agentClient(a.listenSas).client;
    const mine = await listen.createReceiver(a.queue).receiveMessages(1, { maxWaitTimeInMs: 2000 });
    expect(mine.map((m) => (m.body as StepEnvelope).nodeId)).toEqual(["fn-a"]);
    await expect(listen.createReceiver(queueFor("fn-b")).receiveMessages(1, { maxWaitTimeInMs: 2000 })).rejects.toMatchObject({ code: "UnauthorizedAccess" });
    await expect(listen.createSender(a.queue).sendMessages({ body: "forged step" })).rejects.toMatchObject({ code: "UnauthorizedAccess" });

    const send = agentClient(a.sendSas).client;
    await send.createSender(RESULTS_QUEUE).sendMessages({ body: { ok: true } });
    await expect(send.createSender(queueFor("fn-b")).sendMessages({ body: "into another mailbox" })).rejects.toMatchObject({ code: "UnauthorizedAccess" });
    await expect(send.createSender(a.queue).sendMessages({ body: "into my own mailbox" })).rejects.toMatchObject({ code: "UnauthorizedAccess" });
    await expect(send.createReceiver(RESULTS_QUEUE).receiveMessages(1, { maxWaitTimeInMs: 1000 })).rejects.toMatchObject({ code: "UnauthorizedAccess" });
    // A token covers every URI it is a prefix of: the quarantine queue's name must not extend the results queue's.
    await expect(send.createSender(REJECTED_RESULTS_QUEUE).sendMessages({ body: "forged quarantine record" })).rejects.toMatchObject({
      code: "UnauthorizedAccess",
    });

    expect(emulator.inspect.messages(queueFor("fn-b")).map((m) => m.state)).toEqual(["active"]);
    // Every delivery so far was authorized by a token scoped to the receiving queue.
    const deliveries = emulator.log.of("delivered");
    expect(deliveries.every((d) => d.queue === "node-fn-a")).toBe(true);
  });

  it("are refused once expired", async () => {
    await mailbox.open("fn-a");
    const old = mailbox.credentialsFor("fn-a", new Date(clock.now() - 3 * 3600_000));
    await expect(agentClient(old.listenSas).client.createReceiver(old.queue).receiveMessages(1, { maxWaitTimeInMs: 1000 })).rejects.toMatchObject({
      code: "UnauthorizedAccess",
    });
  });

  it("refresh without dropping the receiver", async () => {
    await mailbox.open("fn-a");
    // Minted long enough ago that it has 30 s left: the emulator's clock must stay near real time, because the
    // service's own SDK-made tokens are dated by the real clock.
    const first = mailbox.credentialsFor("fn-a", new Date(clock.now() - DEFAULT_SAS_LIFETIME_MS + 30_000));
    const { client, credential } = agentClient(first.listenSas, { retries: true });
    const received: string[] = [];
    const errors: string[] = [];
    const receiver = client.createReceiver(first.queue);
    receiver.subscribe({
      processMessage: async (m) => void received.push(String(m.messageId)),
      processError: async (e) => void errors.push(String((e.error as { code?: string }).code)),
    });

    await mailbox.send(envelope("fn-a", "before"));
    await until(() => received.length === 1);
    // Past half-life: the agent fetches fresh tokens and updates the credential in place.
    expect(Date.parse(first.refreshAfter)).toBeLessThan(clock.now());
    credential.update(creds("fn-a").listenSas);
    // The first token runs out; the link it authorized is cut, and the SDK re-attaches with the current token.
    clock.advance(Date.parse(first.expiresAt) - clock.now() + 1000);
    emulator.sweep();
    expect((await emulator.log.waitFor("linkDetached")).condition).toBe("amqp:unauthorized-access");
    await mailbox.send(envelope("fn-a", "after"));
    await until(() => received.length === 2);
    expect(received).toEqual(["before/1", "after/1"]);
    // The same receiver object kept going: the SDK re-attached on a new link with the refreshed token.
    expect(new Set(errors)).toEqual(new Set(["UnauthorizedAccess"]));
    const [before, after] = emulator.log.of("delivered");
    expect(after!.link.linkName).not.toBe(before!.link.linkName);
    await receiver.close();
  });
});

describe("envelopes on the wire", () => {
  it("arrive verifiable, and a tampered one is rejected by the agent's verifier", async () => {
    await mailbox.open("fn-a");
    await mailbox.send(envelope("fn-a"));
    const a = creds("fn-a");
    const [message] = await agentClient(a.listenSas).client.createReceiver(a.queue).receiveMessages(1, { maxWaitTimeInMs: 2000 });
    const options = { servicePublicKey: exportPublicKey(serviceKey), nodeId: "fn-a", now: new Date(clock.now()) };
    const servicePublicKey = (await import("node:crypto")).createPublicKey(serviceKey);
    expect(verifyStepEnvelope(message!.body, { ...options, servicePublicKey }).stepId).toBe("s1");
    const tampered = structuredClone(message!.body) as { params: { files: { path: string }[] } };
    tampered.params.files[0]!.path = "/etc/sudoers.d/owned";
    expect(() => verifyStepEnvelope(tampered, { ...options, servicePublicKey })).toThrow(expect.objectContaining({ code: "bad_signature" }));
    expect(() => verifyStepEnvelope(message!.body, { ...options, servicePublicKey, nodeId: "fn-b" })).toThrow(expect.objectContaining({ code: "wrong_node" }));
  });

  it("are never sent carrying anything secret-shaped", async () => {
    await mailbox.open("fn-a");
    const leaky = { ...envelope("fn-a"), params: { kubeconfigToken: "abcdef.0123456789abcdef" } } as unknown as StepEnvelope;
    await expect(mailbox.send(leaky)).rejects.toBeInstanceOf(SecretInEnvelopeError);
    expect(emulator.log.of("enqueued")).toEqual([]);
    await mailbox.send(envelope("fn-a", "s1", { secretRef: "bootstrap-kubeconfig", path: "/var/lib/flexnode/bootstrap.kubeconfig" }));
    expect(emulator.log.of("enqueued").flatMap((e) => findSecrets(e.body))).toEqual([]);
  });

  it("dead-letter a poisoned envelope after the queue's max delivery count", async () => {
    await mailbox.open("fn-a");
    await mailbox.send(envelope("fn-a", "poison"));
    const a = creds("fn-a");
    const receiver = agentClient(a.listenSas).client.createReceiver(a.queue);
    for (let i = 0; i < 5; i++) {
      const [m] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 2000 });
      expect(m?.deliveryCount).toBe(i);
      await receiver.abandonMessage(m!);
    }
    const dlq = agentClient(a.listenSas).client.createReceiver(a.queue, { subQueueType: "deadLetter" });
    const [dead] = await dlq.receiveMessages(1, { maxWaitTimeInMs: 2000 });
    expect(dead).toMatchObject({ messageId: "poison/1", deadLetterReason: "MaxDeliveryCountExceeded" });
  });
});

describe("long steps", () => {
  it("stay locked through a step three times the lock duration, and complete exactly once", async () => {
    await emulator.stop();
    await service.close();
    await start({ lockDuration: "PT1S" });
    await mailbox.open("fn-a");
    await mailbox.send(envelope("fn-a", "long"));
    const a = creds("fn-a");
    const receiver = agentClient(a.listenSas).client.createReceiver(a.queue, { maxAutoLockRenewalDurationInMs: 30_000 });
    const handled: ServiceBusReceivedMessage[] = [];
    receiver.subscribe(
      {
        processMessage: async (m) => {
          await new Promise((r) => setTimeout(r, 3000));
          handled.push(m);
        },
        processError: async () => undefined,
      },
      { autoCompleteMessages: true },
    );
    await until(() => emulator.log.of("settled", (e) => e.outcome === "completed").length === 1, 10_000);
    await receiver.close();
    expect(handled.map((m) => m.messageId)).toEqual(["long/1"]);
    expect(emulator.log.of("delivered").map((d) => d.deliveryCount)).toEqual([0]);
    expect(emulator.log.of("lockRenewed").length).toBeGreaterThanOrEqual(2);
    expect(emulator.log.of("lockExpired")).toEqual([]);
  });
});

async function until(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}
