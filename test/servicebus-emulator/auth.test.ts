import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { AzureSASCredential } from "@azure/core-auth";
import type { ServiceBusReceivedMessage } from "@azure/service-bus";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ManualClock } from "../support/index.js";
import { RawAmqpClient } from "./raw-amqp-client.js";
import { EMULATOR_ONLY, eventually, openTarget, RULES, TARGETS_EXTERNAL_NAMESPACE, type TestTarget } from "./test-target.js";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, "../..");

describe("SAS authorization of SDK clients", () => {
  let target: TestTarget;
  let queueA: string;
  let queueB: string;
  let results: string;

  beforeAll(async () => {
    target = await openTarget();
    queueA = await target.queue("auth-a");
    queueB = await target.queue("auth-b");
    results = await target.queue("node-results");
  });
  afterAll(() => target.close());

  it("a Listen token scoped to queue A receives from A, but cannot receive from B nor send to A or B", async (ctx) => {
    ctx.skip(TARGETS_EXTERNAL_NAMESPACE, EMULATOR_ONLY);
    await target.client().createSender(queueA).sendMessages({ body: "step-1", messageId: "step-1" });
    const node = target.sasClient(new AzureSASCredential(target.token(RULES.listen, queueA, 3600)));

    const receiver = node.createReceiver(queueA);
    const [message] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 5000 });
    expect(message?.body).toBe("step-1");
    await receiver.completeMessage(message!);

    await expect(node.createReceiver(queueB).receiveMessages(1, { maxWaitTimeInMs: 200 })).rejects.toMatchObject({
      code: "UnauthorizedAccess",
      message: expect.stringMatching(/^InvalidAudience/),
    });
    await expect(node.createSender(queueA).sendMessages({ body: "forged" })).rejects.toMatchObject({
      code: "UnauthorizedAccess",
      message: expect.stringContaining("'Send' claim(s) are required"),
    });
    await expect(node.createSender(queueB).sendMessages({ body: "forged" })).rejects.toMatchObject({ code: "UnauthorizedAccess" });

    const log = target.emulator!.log;
    expect(log.deliveries(queueA)).toMatchObject([
      { messageId: "step-1", deliveryCount: 0, link: { authorizedBy: { ruleName: "node-listen", scopeUri: `${target.endpoint}/${queueA}` } } },
    ]);
    expect(log.settlements(queueA)).toMatchObject([{ messageId: "step-1", outcome: "completed", result: "ok", via: "link" }]);
    expect(log.enqueued(queueA)).toHaveLength(1);
    // Other queues fail at CBS (the token's scope); the sender on A fails at attach (the rule's rights).
    expect(log.of("putToken", (e) => e.status === 401).map((e) => e.audience)).toEqual([`${target.endpoint}/${queueB}`, `${target.endpoint}/${queueB}`]);
    expect(log.of("linkRefused")).toMatchObject([{ address: queueA, condition: "amqp:unauthorized-access" }]);
  });

  it("a Send token scoped to node-results sends there and can do nothing else", async (ctx) => {
    ctx.skip(TARGETS_EXTERNAL_NAMESPACE, EMULATOR_ONLY);
    const node = target.sasClient(new AzureSASCredential(target.token(RULES.send, results, 3600)));
    await node.createSender(results).sendMessages({ body: { node: "n-1", ok: true }, messageId: "result-1" });

    await expect(node.createReceiver(results).receiveMessages(1, { maxWaitTimeInMs: 200 })).rejects.toMatchObject({
      code: "UnauthorizedAccess",
      message: expect.stringContaining("'Listen' claim(s) are required"),
    });
    await expect(node.createSender(queueA).sendMessages({ body: "x" })).rejects.toMatchObject({
      code: "UnauthorizedAccess",
      message: expect.stringMatching(/^InvalidAudience/),
    });
    expect(target.emulator!.log.enqueued(results)).toMatchObject([
      { messageId: "result-1", link: { authorizedBy: { ruleName: "node-send", scopeUri: `${target.endpoint}/${results}` } } },
    ]);
  });

  it("scope is a prefix of the resource URI, as Microsoft's SAS page words it: a token for queue A also covers a queue whose name extends A's", async () => {
    // Run against a real namespace (SERVICEBUS_TEST_CONNECTION_STRING), this settles the reading the emulator takes.
    const extended = await target.queue(queueA);
    const node = target.sasClient(new AzureSASCredential(target.token(target.manageRule, queueA, 3600)));
    await expect(node.createReceiver(queueA).peekMessages(1)).resolves.toBeInstanceOf(Array);
    await expect(node.createReceiver(extended).peekMessages(1)).resolves.toBeInstanceOf(Array);
    await expect(node.createReceiver(queueB).peekMessages(1)).rejects.toMatchObject({ code: "UnauthorizedAccess" });
  });

  it("refuses an expired token", async () => {
    const node = target.sasClient(new AzureSASCredential(target.token(target.manageRule, queueA, -60)));
    await expect(node.createReceiver(queueA).peekMessages(1)).rejects.toMatchObject({
      code: "UnauthorizedAccess",
      message: expect.stringMatching(/ExpiredToken/),
    });
  });

  it("refuses a token for queue A on the namespace root (raw CBS put-token)", async (ctx) => {
    ctx.skip(TARGETS_EXTERNAL_NAMESPACE, EMULATOR_ONLY);
    const { host, port } = target.emulator!.address;
    const raw = await RawAmqpClient.connect(host, port);
    try {
      const root = `${target.endpoint}/`;
      expect(await raw.putToken(root, target.token(RULES.manage, queueA, 3600))).toEqual({
        status: 401,
        description: "InvalidAudience: The authorization header contains a token with a wrong audience.",
      });
      expect(await raw.putToken(root, target.token(RULES.manage, "", 3600))).toEqual({ status: 202, description: "Accepted" });
    } finally {
      await raw.close();
    }
  });

  it("the production construction (host + AzureSASCredential, over TLS) works once the process trusts the emulator's CA", async (ctx) => {
    ctx.skip(TARGETS_EXTERNAL_NAMESPACE, EMULATOR_ONLY);
    const running = target.emulator!.address;
    const dir = mkdtempSync(path.join(tmpdir(), "sb-emulator-"));
    try {
      const caFile = path.join(dir, "ca.pem");
      writeFileSync(caFile, running.ca);
      const token = signedFor(target, running.tlsNamespace, queueB);
      const [trusted, untrusted] = await Promise.all([
        runClientProcess({ SB_NAMESPACE: running.tlsNamespace, SB_TOKEN: token, SB_QUEUE: queueB, NODE_EXTRA_CA_CERTS: caFile }),
        runClientProcess({ SB_NAMESPACE: running.tlsNamespace, SB_TOKEN: token, SB_QUEUE: queueB }),
      ]);
      expect(trusted).toEqual({ body: "over-tls" });
      expect(untrusted.error).toMatch(/certificate/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("SAS token refresh", () => {
  it("a receiver whose credential is updated before expiry keeps receiving across the old token's expiry", async (ctx) => {
    ctx.skip(TARGETS_EXTERNAL_NAMESPACE, EMULATOR_ONLY);
    const clock = new ManualClock(Date.now());
    const target = await openTarget({ clock });
    try {
      const queue = await target.queue("node");
      const credential = new AzureSASCredential(target.token(RULES.listen, queue, 60, clock.now()));
      const received: unknown[] = [];
      const errors: string[] = [];
      const receiver = target.sasClient(credential).createReceiver(queue);
      const subscription = receiver.subscribe({
        processMessage: async (message: ServiceBusReceivedMessage) => {
          received.push(message.body);
        },
        processError: async (args) => {
          errors.push((args.error as { code?: string }).code ?? args.error.name);
        },
      });
      const service = target.client().createSender(queue);
      await service.sendMessages({ body: "before" });
      await eventually(() => (received.includes("before") ? true : undefined));

      credential.update(target.token(RULES.listen, queue, 3600, clock.now()));
      clock.advance(61_000);
      target.emulator!.sweep();
      const detached = await target.emulator!.log.waitFor("linkDetached");
      expect(detached.condition).toBe("amqp:unauthorized-access");

      await service.sendMessages({ body: "after" });
      await eventually(() => (received.includes("after") ? true : undefined));
      expect(received).toEqual(["before", "after"]);
      // The SDK reports the service's detach once, then re-attaches with the credential's current token.
      expect(errors.length).toBeGreaterThanOrEqual(1);
      expect(new Set(errors)).toEqual(new Set(["UnauthorizedAccess"]));
      const [first, second] = target.emulator!.log.deliveries(queue);
      expect(second!.link.linkName).not.toBe(first!.link.linkName);
      expect(second!.link.authorizedBy.tokenExpiresAt).toBeGreaterThan(first!.link.authorizedBy.tokenExpiresAt);
      await subscription.close();
    } finally {
      await target.close();
    }
  });

  it("a message received on a link detached for token expiry is still completed, through $management", async (ctx) => {
    ctx.skip(TARGETS_EXTERNAL_NAMESPACE, EMULATOR_ONLY);
    const clock = new ManualClock(Date.now());
    const target = await openTarget({ clock });
    try {
      const queue = await target.queue("node");
      await target.client().createSender(queue).sendMessages({ body: "in flight", messageId: "in-flight" });
      const credential = new AzureSASCredential(target.token(RULES.listen, queue, 60, clock.now()));
      const receiver = target.sasClient(credential).createReceiver(queue, { maxAutoLockRenewalDurationInMs: 0 });
      const [message] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 5000 });

      credential.update(target.token(RULES.listen, queue, 3600, clock.now()));
      clock.advance(61_000);
      target.emulator!.sweep();
      await target.emulator!.log.waitFor("linkDetached");
      await receiver.completeMessage(message!);
      expect(target.emulator!.log.settlements(queue)).toMatchObject([{ messageId: "in-flight", outcome: "completed", via: "management", result: "ok" }]);
      expect(target.emulator!.inspect.queue(queue)).toMatchObject({ active: 0 });
    } finally {
      await target.close();
    }
  });

  it("a fresh put-token for the same audience (what the SDK sends every 45 minutes) keeps the link attached", async (ctx) => {
    ctx.skip(TARGETS_EXTERNAL_NAMESPACE, EMULATOR_ONLY);
    const clock = new ManualClock(Date.now());
    const target = await openTarget({ clock });
    const { host, port } = target.emulator!.address;
    const raw = await RawAmqpClient.connect(host, port);
    try {
      const renewedQueue = await target.queue("renewed");
      const neglectedQueue = await target.queue("neglected");
      for (const queue of [renewedQueue, neglectedQueue]) {
        expect(await raw.putToken(`${target.endpoint}/${queue}`, target.token(RULES.listen, queue, 60, clock.now()))).toMatchObject({ status: 202 });
      }
      const renewed = await raw.openReceiver(renewedQueue);
      const neglected = await raw.openReceiver(neglectedQueue);
      expect(await raw.putToken(`${target.endpoint}/${renewedQueue}`, target.token(RULES.listen, renewedQueue, 3600, clock.now()))).toMatchObject({
        status: 202,
      });

      clock.advance(61_000);
      target.emulator!.sweep();
      expect(await neglected.closed).toMatchObject({ condition: "amqp:unauthorized-access" });
      await target.client().createSender(renewedQueue).sendMessages({ body: "still attached", messageId: "m-renewed" });
      expect((await renewed.next()).message_id).toBe("m-renewed");
    } finally {
      await raw.close();
      await target.close();
    }
  });
});

function signedFor(target: TestTarget, hostPort: string, queue: string): string {
  // The audience the SDK puts is sb://<host:port>/<queue>; the target's endpoint has the same host and port.
  expect(target.endpoint).toBe(`sb://${hostPort}`);
  return target.token(target.manageRule, queue, 3600);
}

function runClientProcess(env: Record<string, string>): Promise<{ body?: unknown; error?: string }> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ["--import", "tsx", path.join(HERE, "sas-client-process.ts")],
      { cwd: REPO, env: { ...process.env, ...env }, timeout: 20_000 },
      (error, stdout) => {
        const line = stdout.trim().split("\n").pop() ?? "";
        try {
          resolve(JSON.parse(line) as { body?: unknown; error?: string });
        } catch {
          reject(error ?? new Error(`unexpected output: ${stdout}`));
        }
      },
    );
  });
}
