import type { ServiceBusReceivedMessage } from "@azure/service-bus";
import { afterAll, beforeAll, describe, it } from "vitest";
import { formatIsoDuration } from "./iso-duration.js";
import { eventually, openTarget, SHORT_LOCK_MS, sleep, type TestTarget } from "./test-target.js";

// Lock timing is wall-clock on both sides (the SDK renews from lockedUntilUtc with real timers), so these tests
// sleep; the lock is short (1.2 s on the emulator) and the slow handler runs three lock durations.
const HANDLER_MS = 3 * SHORT_LOCK_MS;
const LOCK = { lockDuration: formatIsoDuration(SHORT_LOCK_MS), maxDeliveryCount: 5 };
const TIMEOUT_MS = HANDLER_MS + 10 * SHORT_LOCK_MS;

describe("message locks", () => {
  let target: TestTarget;

  beforeAll(async () => {
    target = await openTarget();
  });
  afterAll(() => target.close());

  it.concurrent(
    "auto lock renewal during subscribe keeps a message alive through a handler 3x the lock duration",
    async ({ expect }) => {
      const queue = await target.queue("auto-renew", LOCK);
      const client = target.client();
      await client.createSender(queue).sendMessages({ body: "slow step", messageId: "slow-1" });
      const handled: ServiceBusReceivedMessage[] = [];
      const errors: unknown[] = [];
      let finished = 0;
      const receiver = client.createReceiver(queue);
      const subscription = receiver.subscribe(
        {
          processMessage: async (message) => {
            handled.push(message);
            await sleep(HANDLER_MS);
            finished += 1;
          },
          processError: async (args) => {
            errors.push(args.error);
          },
        },
        { autoCompleteMessages: true, maxConcurrentCalls: 1 },
      );
      await eventually(() => (finished > 0 ? true : undefined), HANDLER_MS + 5000, 50);
      // Completion follows the handler; a fresh receiver peeks from the start (the SDK's peek cursor moves on).
      await eventually(async () => ((await client.createReceiver(queue).peekMessages(1)).length === 0 ? true : undefined), 5000, 100);
      await sleep(SHORT_LOCK_MS); // a redelivery, had the lock been lost, would have reached the handler by now
      await subscription.close();
      expect(errors).toEqual([]);
      expect(handled.map((m) => m.messageId)).toEqual(["slow-1"]);
      if (target.emulator) {
        const log = target.emulator.log;
        expect(log.deliveries(queue)).toHaveLength(1);
        expect(log.settlements(queue)).toMatchObject([{ outcome: "completed", result: "ok", via: "link" }]);
        expect(log.of("lockExpired", (e) => e.queue === queue)).toEqual([]);
        expect(log.of("lockRenewed", (e) => e.queue === queue).length).toBeGreaterThanOrEqual(2);
      }
    },
    TIMEOUT_MS,
  );

  it.concurrent(
    "renewMessageLock keeps a message alive through work 3x the lock duration",
    async ({ expect }) => {
      const queue = await target.queue("manual-renew", LOCK);
      const client = target.client();
      await client.createSender(queue).sendMessages({ body: "manual", messageId: "manual-1" });
      const receiver = client.createReceiver(queue, { maxAutoLockRenewalDurationInMs: 0 });
      const [message] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 5000 });
      const deadline = Date.now() + HANDLER_MS;
      let lockedUntil = message!.lockedUntilUtc!;
      while (Date.now() < deadline) {
        await sleep(SHORT_LOCK_MS / 2);
        const renewed = await receiver.renewMessageLock(message!);
        expect(renewed.getTime()).toBeGreaterThan(lockedUntil.getTime());
        lockedUntil = renewed;
      }
      await receiver.completeMessage(message!);
      expect(await receiver.receiveMessages(1, { maxWaitTimeInMs: SHORT_LOCK_MS })).toEqual([]);
      if (target.emulator) {
        expect(target.emulator.log.deliveries(queue)).toHaveLength(1);
        expect(target.emulator.log.settlements(queue)).toMatchObject([{ messageId: "manual-1", outcome: "completed", result: "ok" }]);
      }
    },
    TIMEOUT_MS,
  );

  it.concurrent(
    "without renewal the lock expires: redelivery with delivery count + 1, and the stale settle fails",
    async ({ expect }) => {
      const queue = await target.queue("no-renew", LOCK);
      const client = target.client();
      await client.createSender(queue).sendMessages({ body: "forgotten", messageId: "forgotten-1" });
      const receiver = client.createReceiver(queue, { maxAutoLockRenewalDurationInMs: 0 });
      const [first] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 5000 });
      expect(first!.deliveryCount).toBe(0);
      const [second] = await receiver.receiveMessages(1, { maxWaitTimeInMs: SHORT_LOCK_MS + 5000 });
      expect(second).toMatchObject({ messageId: "forgotten-1", deliveryCount: 1 });
      expect(second!.lockToken).not.toBe(first!.lockToken);
      await expect(receiver.completeMessage(first!)).rejects.toMatchObject({ code: "MessageLockLost" });
      await receiver.completeMessage(second!);
      if (target.emulator) {
        expect(target.emulator.log.of("lockExpired", (e) => e.queue === queue)).toMatchObject([{ lockToken: first!.lockToken, deliveryCount: 1 }]);
        expect(target.emulator.log.settlements(queue).map((s) => [s.lockToken, s.result])).toEqual([
          [first!.lockToken, "lockLost"],
          [second!.lockToken, "ok"],
        ]);
      }
    },
    TIMEOUT_MS,
  );
});
