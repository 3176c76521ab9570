import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ManualClock } from "../support/index.js";
import { formatIsoDuration } from "./iso-duration.js";
import { EMULATOR_ONLY, openTarget, TARGETS_EXTERNAL_NAMESPACE, type TestTarget } from "./test-target.js";

const WAIT = { maxWaitTimeInMs: 5000 };

describe("queue messaging through the SDK", () => {
  let target: TestTarget;

  beforeAll(async () => {
    target = await openTarget();
  });
  afterAll(() => target.close());

  it("a batch send arrives as separate messages, in order, with service-assigned sequence numbers and lock tokens", async () => {
    const queue = await target.queue("batch");
    const client = target.client();
    const sender = client.createSender(queue);
    const batch = await sender.createMessageBatch();
    for (const id of ["s-1", "s-2", "s-3"]) expect(batch.tryAddMessage({ body: { step: id }, messageId: id, subject: "step" })).toBe(true);
    await sender.sendMessages(batch);
    await sender.sendMessages([{ body: "array-1" }, { body: "array-2" }]);

    const receiver = client.createReceiver(queue);
    const received = [];
    while (received.length < 5) {
      const more = await receiver.receiveMessages(5 - received.length, WAIT);
      expect(more.length).toBeGreaterThan(0);
      received.push(...more);
    }
    expect(received.map((m) => m.body as unknown)).toEqual([{ step: "s-1" }, { step: "s-2" }, { step: "s-3" }, "array-1", "array-2"]);
    expect(received.slice(0, 3).map((m) => m.messageId)).toEqual(["s-1", "s-2", "s-3"]);
    // The service assigns ids to messages sent without one; the SDK's lock renewer depends on them.
    expect(received.slice(3).every((m) => typeof m.messageId === "string" && m.messageId.length > 0)).toBe(true);
    const sequence = received.map((m) => Number(m.sequenceNumber));
    expect([...sequence].sort((a, b) => a - b)).toEqual(sequence);
    expect(new Set(sequence).size).toBe(5);
    for (const m of received) {
      expect(m.lockToken).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      expect(m.lockedUntilUtc!.getTime()).toBeGreaterThan(Date.now());
      expect(m.enqueuedTimeUtc).toBeInstanceOf(Date);
      await receiver.completeMessage(m);
    }
    if (target.emulator) {
      // The SDK's lock token is the one the broker issued (delivery tag in .NET Guid byte order, decoded).
      expect(target.emulator.log.deliveries(queue).map((d) => d.lockToken)).toEqual(received.map((m) => m.lockToken));
    }
    await expect(receiver.completeMessage(received[0]!)).rejects.toThrow(/already settled/);
  });

  it("peek returns messages without locking or consuming them", async () => {
    const queue = await target.queue("peek");
    const client = target.client();
    await client.createSender(queue).sendMessages([{ body: "p-1" }, { body: "p-2" }]);
    const receiver = client.createReceiver(queue);
    const peeked = await receiver.peekMessages(10);
    expect(peeked.map((m) => m.body as unknown)).toEqual(["p-1", "p-2"]);
    expect(peeked.every((m) => m.lockToken === undefined && m.state === "active")).toBe(true);
    const [first] = await receiver.receiveMessages(1, WAIT);
    expect(first).toMatchObject({ body: "p-1", deliveryCount: 0 });
    await receiver.completeMessage(first!);
  });

  it("receive-and-delete removes the message as it is delivered", async () => {
    const queue = await target.queue("rad");
    const client = target.client();
    await client.createSender(queue).sendMessages({ body: "once" });
    const [message] = await client.createReceiver(queue, { receiveMode: "receiveAndDelete" }).receiveMessages(1, WAIT);
    expect(message).toMatchObject({ body: "once" });
    expect(message!.lockToken).toBeUndefined();
    expect(await client.createReceiver(queue).peekMessages(5)).toEqual([]);
  });

  it("a scheduled message stays invisible until its time; a cancelled one never arrives", async () => {
    const queue = await target.queue("scheduled");
    const client = target.client();
    const sender = client.createSender(queue);
    const at = new Date(Date.now() + 800);
    const [kept, cancelled] = await sender.scheduleMessages([{ body: "kept" }, { body: "cancelled" }], at);
    const receiver = client.createReceiver(queue);
    const peeked = await receiver.peekMessages(10);
    expect(peeked.map((m) => [m.body, m.state, Number(m.sequenceNumber)])).toEqual([
      ["kept", "scheduled", Number(kept)],
      ["cancelled", "scheduled", Number(cancelled)],
    ]);
    await sender.cancelScheduledMessages(cancelled!);
    expect(await receiver.receiveMessages(1, { maxWaitTimeInMs: 200 })).toEqual([]);
    const [arrived] = await receiver.receiveMessages(1, WAIT);
    expect(arrived).toMatchObject({ body: "kept" });
    expect(Date.now()).toBeGreaterThanOrEqual(at.getTime() - 50);
    await receiver.completeMessage(arrived!);
    expect(await receiver.receiveMessages(1, { maxWaitTimeInMs: 300 })).toEqual([]);
  });

  it("max delivery count dead-letters a poisoned message with MaxDeliveryCountExceeded", async () => {
    const queue = await target.queue("poison", { maxDeliveryCount: 3 });
    const client = target.client();
    await client.createSender(queue).sendMessages({ body: "poison", messageId: "poison-1" });
    const receiver = client.createReceiver(queue);
    const counts: number[] = [];
    for (let attempt = 0; attempt < 3; attempt++) {
      const [message] = await receiver.receiveMessages(1, WAIT);
      counts.push(message!.deliveryCount!);
      await receiver.abandonMessage(message!, { lastError: `attempt ${attempt}` });
    }
    expect(counts).toEqual([0, 1, 2]);
    const deadLetters = client.createReceiver(queue, { subQueueType: "deadLetter" });
    const [dead] = await deadLetters.receiveMessages(1, WAIT);
    expect(dead).toMatchObject({
      body: "poison",
      messageId: "poison-1",
      deadLetterReason: "MaxDeliveryCountExceeded",
      applicationProperties: expect.objectContaining({ lastError: "attempt 2" }),
    });
    expect(dead!.deadLetterErrorDescription).toMatch(/3 delivery attempts/);
    await deadLetters.completeMessage(dead!);
    if (target.emulator) {
      expect(target.emulator.log.deadLetters(queue)).toMatchObject([{ messageId: "poison-1", reason: "MaxDeliveryCountExceeded" }]);
      expect(target.emulator.log.settlements(queue).map((s) => s.outcome)).toEqual(["abandoned", "abandoned", "abandoned", "completed"]);
    }
  });

  it("deadLetterMessage moves the message to $DeadLetterQueue with the given reason and description", async () => {
    const queue = await target.queue("reject");
    const client = target.client();
    await client.createSender(queue).sendMessages({ body: { bad: true } });
    const receiver = client.createReceiver(queue);
    const [message] = await receiver.receiveMessages(1, WAIT);
    await receiver.deadLetterMessage(message!, { deadLetterReason: "SignatureInvalid", deadLetterErrorDescription: "envelope signature did not verify" });
    const [dead] = await client.createReceiver(queue, { subQueueType: "deadLetter" }).receiveMessages(1, WAIT);
    expect(dead).toMatchObject({ body: { bad: true }, deadLetterReason: "SignatureInvalid", deadLetterErrorDescription: "envelope signature did not verify" });
    expect(await receiver.peekMessages(5)).toEqual([]);
  });
});

describe("message TTL", () => {
  it("an expired message goes to the dead-letter queue with TTLExpiredException when the queue says so", async (ctx) => {
    ctx.skip(TARGETS_EXTERNAL_NAMESPACE, EMULATOR_ONLY);
    const clock = new ManualClock(Date.now());
    const target = await openTarget({ clock });
    try {
      const queue = await target.queue("ttl", { defaultMessageTimeToLive: formatIsoDuration(60_000), deadLetteringOnMessageExpiration: true });
      const dropQueue = await target.queue("ttl-drop", { defaultMessageTimeToLive: formatIsoDuration(60_000) });
      const client = target.client();
      await client.createSender(queue).sendMessages([
        { body: "stale", messageId: "stale-1" },
        { body: "short", timeToLive: 5_000 },
      ]);
      await client.createSender(dropQueue).sendMessages({ body: "dropped" });
      clock.advance(10_000);
      target.emulator!.sweep();
      expect(target.emulator!.inspect.messages(queue, { deadLetter: true }).map((m) => m.body)).toEqual(["short"]);

      clock.advance(60_000);
      target.emulator!.sweep();
      const [dead] = await client.createReceiver(queue, { subQueueType: "deadLetter" }).receiveMessages(2, { maxWaitTimeInMs: 1000 });
      expect(dead).toMatchObject({ body: "short", deadLetterReason: "TTLExpiredException" });
      expect(target.emulator!.inspect.queue(queue)).toMatchObject({ active: 0, deadLettered: 2 });
      expect(target.emulator!.inspect.queue(dropQueue)).toMatchObject({ active: 0, deadLettered: 0 });
      expect(
        target.emulator!.log.of("expired").map((e) => [e.messageId === "stale-1" ? "stale" : e.queue === dropQueue ? "drop" : "short", e.deadLettered]),
      ).toEqual([
        ["short", true],
        ["stale", true],
        ["drop", false],
      ]);
    } finally {
      await target.close();
    }
  });
});
