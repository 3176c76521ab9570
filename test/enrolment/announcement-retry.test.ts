/**
 * An enrolment's announcement is never lost to a failed publish. The request that creates a node announces it before
 * its saga starts; when Event Grid refuses that publish the node gets a 500, and its retry (same key, the token's use
 * already spent by it) repeats the very same event before answering, then starts the saga. Real `@azure/eventgrid`
 * client, the Event Grid endpoint stand-in over HTTPS, enrolment over the Functions host stand-in.
 */
import { afterEach, describe, expect, it } from "vitest";
import { inject } from "vitest";
import { lifecycleEventId, LIFECYCLE_EVENT_PREFIX } from "../../contract/lifecycle-events.js";
import { eventGridLifecycleEvents } from "../../orchestrations/clients/events/lifecycle-events.js";
import { Registry } from "../../orchestrations/clients/registry/registry.js";
import { emulatorCredential } from "../arm-emulator/index.js";
import { startEventGridReceiver, type EventGridReceiver } from "../eventgrid-receiver/index.js";
import { admin, newNode, startApp, type TestApp, type TestNode, useStandInSaga } from "../function-app/index.js";

useStandInSaga();

let app: TestApp | undefined;
let receiver: EventGridReceiver | undefined;
afterEach(async () => {
  await app?.close();
  await receiver?.close();
  app = receiver = undefined;
});

const SENDER = "00000000-0000-4000-8000-00000000e6e1";
/** What the topic answers while the service's Data Sender role assignment has not reached it yet. */
const NOT_YET_AUTHORISED = { status: 403, code: "Unauthorized", message: "The principal does not have the required permissions to publish to this topic." };

async function start(pool: Record<string, unknown> = {}): Promise<{ app: TestApp; receiver: EventGridReceiver; registry: Registry }> {
  receiver = await startEventGridReceiver();
  app = await startApp();
  app.useServices({
    events: eventGridLifecycleEvents({ endpoint: receiver.endpoint, credential: emulatorCredential(SENDER), tlsOptions: { ca: receiver.ca } }),
  });
  expect((await app.createPool("edge", pool)).status).toBe(201);
  return { app, receiver, registry: new Registry({ connectionString: inject("azuriteConnectionString"), prefix: app.prefix }) };
}

const kinds = (r: EventGridReceiver) => r.events().map((e) => e.type.slice(LIFECYCLE_EVENT_PREFIX.length));

async function enrolRefusedOnce(a: TestApp, r: EventGridReceiver, node: TestNode, token: string) {
  const before = r.events().length;
  r.refuseNext(1, NOT_YET_AUTHORISED);
  const first = await a.enrol(node, token);
  expect(first.status).toBe(500);
  expect(r.events()).toHaveLength(before);
}

describe("enrolment announcements survive a refused publish", () => {
  it("a node whose enrolled event was refused gets it sent by its retry, once, and its saga starts only then", async () => {
    const { app, receiver, registry } = await start();
    const node = newNode();
    const token = await app.createToken("edge");
    await enrolRefusedOnce(app, receiver, node, token);
    const [stored] = (await registry.nodes.list({ pool: "edge" })).items;
    expect(stored).toMatchObject({ status: "Enrolling", approvalRequired: false });
    // The announcement comes before the saga: no saga ran for a node nobody has heard of.
    await app.simulator.runUntilIdle();
    expect(app.simulator.getStatus(stored!.nodeId)).toBeUndefined();

    const retry = await app.enrol(node, token);
    expect(retry.status).toBe(200);
    expect(kinds(receiver)).toEqual(["enrolled"]);
    const [event] = receiver.events();
    expect(event).toMatchObject({
      id: lifecycleEventId(stored!.nodeId, stored!.createdAt, "enrolled"),
      time: stored!.createdAt,
      data: { nodeId: stored!.nodeId, pool: "edge", hostname: node.facts.hostname, approvalRequired: false },
    });
    await app.simulator.runUntilIdle();
    expect(app.simulator.getStatus(stored!.nodeId)?.runtimeStatus).toBe("Running");

    // With its saga running the node was announced: a further retry sends nothing more.
    expect((await app.enrol(node, token)).status).toBe(200);
    expect(kinds(receiver)).toEqual(["enrolled"]);
  });

  it("a node waiting for approval is announced as such by its retry, with the id a successful first answer would have had", async () => {
    const { app, receiver, registry } = await start();
    const node = newNode();
    const token = await app.createToken("edge", { approvalRequired: true });
    await enrolRefusedOnce(app, receiver, node, token);

    const retry = await app.enrol(node, token);
    expect(retry.status).toBe(202);
    const stored = (await registry.nodes.list({ pool: "edge" })).items[0]!;
    expect(receiver.events()).toHaveLength(1);
    expect(receiver.events()[0]).toMatchObject({
      id: lifecycleEventId(stored.nodeId, stored.createdAt, "enrolled"),
      data: { nodeId: stored.nodeId, approvalRequired: true },
    });
    await app.simulator.runUntilIdle();
    expect(app.simulator.getStatus(stored.nodeId)).toBeUndefined();
  });

  it("a second key's quarantined claim is announced by its retry", async () => {
    const { app, receiver, registry } = await start({ clonePolicy: "quarantine" });
    const token = await app.createToken("edge", { maxUses: 10 });
    const original = newNode();
    expect((await app.enrol(original, token)).status).toBe(201);
    const clone = { ...newNode(), facts: { ...original.facts, hostname: "edge-clone" } };
    await enrolRefusedOnce(app, receiver, clone, token);
    const retry = await app.enrol(clone, token);
    expect(retry.status).toBe(202);
    const claimed = (await registry.nodes.list({ pool: "edge" })).items[0]!;
    const quarantined = receiver.events().filter((e) => e.type === `${LIFECYCLE_EVENT_PREFIX}quarantined`);
    expect(quarantined).toHaveLength(1);
    expect(quarantined[0]).toMatchObject({
      id: lifecycleEventId(claimed.nodeId, claimed.pendingClaim!.keyId, "quarantined"),
      data: { nodeId: claimed.nodeId, claimKeyId: claimed.pendingClaim!.keyId },
    });
  });

  it("a rejected node enrolling again is announced anew (not as a duplicate of its first enrolment), also by its retry", async () => {
    const { app, receiver, registry } = await start();
    const token = await app.createToken("edge", { maxUses: 3, approvalRequired: true });
    const node = newNode();
    const { nodeId } = (await app.enrol(node, token)).json as { nodeId: string };
    expect((await app.call("POST", `/api/manage/nodes/${nodeId}/reject`, { headers: admin })).status).toBe(200);
    const first = receiver.events().map((e) => e.id);

    await enrolRefusedOnce(app, receiver, node, token);
    expect((await app.enrol(node, token)).status).toBe(202);
    const stored = (await registry.nodes.get(nodeId))!;
    expect(stored.reenrolledAt).toBeDefined();
    const again = receiver.events().filter((e) => !first.includes(e.id));
    expect(again).toEqual([
      expect.objectContaining({ id: lifecycleEventId(nodeId, stored.reenrolledAt!, "enrolled"), data: expect.objectContaining({ approvalRequired: true }) }),
    ]);
  });
});
