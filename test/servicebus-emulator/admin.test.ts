import { randomBytes } from "node:crypto";
import { ServiceBusAdministrationClient } from "@azure/service-bus";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EMULATOR_ONLY, openTarget, RULES, TARGETS_EXTERNAL_NAMESPACE, type TestTarget } from "./test-target.js";

function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString("hex")}`;
}

describe("ServiceBusAdministrationClient against the namespace", () => {
  let target: TestTarget;

  beforeAll(async () => {
    target = await openTarget();
  });
  afterAll(() => target.close());

  it("creating a queue twice fails the second time with 409 MessageEntityAlreadyExistsError", async () => {
    const name = await target.queue("dup");
    await expect(target.admin.createQueue(name)).rejects.toMatchObject({ statusCode: 409, code: "MessageEntityAlreadyExistsError" });
    // Names are case-insensitive on the service.
    await expect(target.admin.createQueue(name.toUpperCase())).rejects.toMatchObject({ statusCode: 409 });
  });

  it("refuses names that do not start and end with a letter or digit (Azure's naming rules for queues)", async () => {
    const n = uniqueName("n");
    for (const bad of [`${n}-`, `${n}.`, `${n}_`, `-${n}`]) {
      await expect(target.admin.createQueue(bad)).rejects.toMatchObject({ statusCode: 400 });
    }
    const good = `${uniqueName("ok")}/x.y_z-1`;
    await target.admin.createQueue(good);
    await target.admin.deleteQueue(good);
  });

  it("deleting a queue twice fails the second time with 404 MessageEntityNotFoundError", async () => {
    const name = uniqueName("del");
    await target.admin.createQueue(name);
    await target.admin.deleteQueue(name);
    await expect(target.admin.deleteQueue(name)).rejects.toMatchObject({ statusCode: 404, code: "MessageEntityNotFoundError" });
  });

  it("queueExists and getQueue tell existing from missing queues", async () => {
    const name = await target.queue("exists");
    expect(await target.admin.queueExists(name)).toBe(true);
    expect(await target.admin.queueExists(uniqueName("missing"))).toBe(false);
    // The service answers a GET of a missing entity with 200 and an empty feed; the SDK raises this error for it.
    await expect(target.admin.getQueue(uniqueName("missing"))).rejects.toMatchObject({ code: "MessageEntityNotFoundError" });
  });

  it("queue properties round-trip through create, get and update", async () => {
    const name = await target.queue("props", {
      lockDuration: "PT45S",
      maxDeliveryCount: 7,
      defaultMessageTimeToLive: "PT2H",
      deadLetteringOnMessageExpiration: true,
      userMetadata: "node n-7",
    });
    const queue = await target.admin.getQueue(name);
    expect(queue).toMatchObject({
      name,
      lockDuration: "PT45S",
      maxDeliveryCount: 7,
      defaultMessageTimeToLive: "PT2H",
      deadLetteringOnMessageExpiration: true,
      userMetadata: "node n-7",
      requiresSession: false,
      status: "Active",
    });
    await target.admin.updateQueue({ ...queue, maxDeliveryCount: 3, lockDuration: "PT1M" });
    expect(await target.admin.getQueue(name)).toMatchObject({ maxDeliveryCount: 3, lockDuration: "PT1M", defaultMessageTimeToLive: "PT2H" });
    if (target.emulator) expect(target.emulator.inspect.queue(name)?.settings).toMatchObject({ maxDeliveryCount: 3, lockDurationMs: 60_000 });
  });

  it("runtime properties count active, scheduled and dead-lettered messages; listQueues finds the queue", async () => {
    const name = await target.queue("runtime");
    const client = target.client();
    const sender = client.createSender(name);
    await sender.sendMessages([{ body: 1 }, { body: 2 }, { body: 3 }]);
    await sender.scheduleMessages({ body: "later" }, new Date(Date.now() + 3_600_000));
    const receiver = client.createReceiver(name);
    const [first] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 5000 });
    await receiver.deadLetterMessage(first!, { deadLetterReason: "test", deadLetterErrorDescription: "counted" });
    const runtime = await target.admin.getQueueRuntimeProperties(name);
    expect(runtime).toMatchObject({ name, activeMessageCount: 2, scheduledMessageCount: 1, deadLetterMessageCount: 1 });
    const names: string[] = [];
    for await (const queue of target.admin.listQueues()) names.push(queue.name);
    expect(names).toContain(name);
  });

  it("a key without Manage rights is refused with 401", async (ctx) => {
    ctx.skip(TARGETS_EXTERNAL_NAMESPACE, EMULATOR_ONLY);
    const running = target.emulator!.address;
    const listenOnly = new ServiceBusAdministrationClient(running.connectionString(RULES.listen.name), {
      ...running.adminClientOptions(),
      retryOptions: { maxRetries: 0 },
    });
    await expect(listenOnly.queueExists("anything")).resolves.toBe(false); // queueExists swallows every error
    await expect(listenOnly.createQueue(uniqueName("nope"))).rejects.toMatchObject({ statusCode: 401, code: "UnauthorizedRequestError" });
  });

  it("refuses what it cannot emulate (sessions) instead of pretending", async (ctx) => {
    ctx.skip(TARGETS_EXTERNAL_NAMESPACE, EMULATOR_ONLY);
    await expect(target.admin.createQueue(uniqueName("sessions"), { requiresSession: true })).rejects.toMatchObject({ statusCode: 400 });
  });

  it("deleting a queue detaches its receivers with MessagingEntityNotFound", async (ctx) => {
    ctx.skip(TARGETS_EXTERNAL_NAMESPACE, EMULATOR_ONLY);
    const name = uniqueName("doomed");
    await target.admin.createQueue(name);
    const errors: string[] = [];
    const subscription = target
      .client()
      .createReceiver(name)
      .subscribe({
        processMessage: async () => undefined,
        processError: async (args) => {
          errors.push((args.error as { code?: string }).code ?? "");
        },
      });
    await target.emulator!.log.waitFor("linkAttached", (e) => e.entityPath === name);
    await target.admin.deleteQueue(name);
    await expect.poll(() => errors, { timeout: 5000 }).toContain("MessagingEntityNotFound");
    await subscription.close();
  });
});
