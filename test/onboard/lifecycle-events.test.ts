/**
 * Lifecycle CloudEvents out: the real sagas and enrolment on the Durable simulator publish through the real
 * `@azure/eventgrid` client (CloudEvent schema, the service's Entra token) to an Event Grid endpoint stand-in over
 * HTTPS. Each transition is announced exactly once per saga run, across the replays of every episode and duplicate
 * node results; an activity executed again after its side effect repeats the same event (same id), never a new one.
 */
import { afterEach, describe, expect, it } from "vitest";
import { EventType } from "../durable/index.js";
import { LIFECYCLE_EVENT_PREFIX, LifecycleEventData, lifecycleEventId, type LifecycleEventKind } from "../../contract/lifecycle-events.js";
import { eventGridLifecycleEvents } from "../../orchestrations/clients/events/lifecycle-events.js";
import { emulatorCredential } from "../arm-emulator/index.js";
import { startEventGridReceiver, type EventGridReceiver, type ReceivedCloudEvent } from "../eventgrid-receiver/index.js";
import { admin } from "../function-app/index.js";
import { SERVICE_PRINCIPAL, startWorld, type World } from "./world.js";

let world: World | undefined;
let receiver: EventGridReceiver | undefined;

afterEach(async () => {
  await world?.close();
  await receiver?.close();
  world = undefined;
  receiver = undefined;
});

async function start(): Promise<{ world: World; receiver: EventGridReceiver }> {
  receiver = await startEventGridReceiver();
  const events = eventGridLifecycleEvents({ endpoint: receiver.endpoint, credential: emulatorCredential(SERVICE_PRINCIPAL), tlsOptions: { ca: receiver.ca } });
  world = await startWorld({ events });
  return { world, receiver };
}

const kindOf = (e: ReceivedCloudEvent) => e.type.slice(LIFECYCLE_EVENT_PREFIX.length) as LifecycleEventKind;
const of = (r: EventGridReceiver, nodeId: string) => r.events().filter((e) => e.subject === `nodes/${nodeId}`);

describe("lifecycle CloudEvents to Event Grid", () => {
  it("announces enrolled and ready once each, across replays and duplicate node results, in the CloudEvents batch format", async () => {
    const { world, receiver } = await start();
    const { nodeId } = await world.enrol({ script: () => "duplicate" });
    expect((await world.settle(nodeId)).output).toEqual({ status: "Ready" });
    // Every result arrived twice, and the saga replayed once per episode.
    const episodes = world.app.simulator.history(nodeId).filter((e) => e.EventType === EventType.OrchestratorStarted).length;
    expect(episodes).toBeGreaterThan(10);

    const events = of(receiver, nodeId);
    expect(events.map(kindOf)).toEqual(["enrolled", "ready"]);
    expect(new Set(events.map((e) => e.id)).size).toBe(2);
    const run = (events[1]!.data as { run: string }).run;
    expect(events[1]!.id).toBe(lifecycleEventId(nodeId, run, "ready"));

    // The wire: the CloudEvents JSON batch format, from the service's identity, each event valid against its type's schema.
    for (const d of receiver.deliveries) {
      expect(d.contentType).toBe("application/cloudevents-batch+json; charset=utf-8");
      expect(d.apiVersion).toBe("2018-01-01");
      expect(d.principalId).toBe(SERVICE_PRINCIPAL);
    }
    for (const e of events) {
      expect(e).toMatchObject({
        specversion: "1.0",
        source: "/flexnode/pools/edge",
        subject: `nodes/${nodeId}`,
        datacontenttype: "application/json",
        dataschema: `https://flexnode.dev/schemas/events/${e.type}.json`,
      });
      expect(Number.isNaN(Date.parse(String(e.time)))).toBe(false);
      expect(LifecycleEventData[kindOf(e)].strict().safeParse(e.data).error).toBeUndefined();
    }
  });

  it("repeats the same event, id included, when the activity runs again after publishing (a crash and replay)", async () => {
    const { world, receiver } = await start();
    const { nodeId } = await world.enrol();
    await world.settle(nodeId);
    const scheduled = world.app.simulator.history(nodeId).filter((e) => e.EventType === EventType.TaskScheduled && e.Name === "events_publishLifecycleEvent");
    expect(scheduled).toHaveLength(1);
    const before = of(receiver, nodeId).filter((e) => kindOf(e) === "ready");
    await world.app.host.invoke("events_publishLifecycleEvent", { string: String(scheduled[0]!.Input) });
    const after = of(receiver, nodeId).filter((e) => kindOf(e) === "ready");
    expect(before).toHaveLength(1);
    expect(after).toEqual([before[0], before[0]]);
  });

  it("announces failed once for a failed onboarding, and offboarded once for a decommissioned node", async () => {
    const { world, receiver } = await start();
    const failing = await world.enrol({ script: (e) => (e.stepId === "kernel-modules" ? "fail" : "succeed") });
    expect((await world.settle(failing.nodeId)).output).toMatchObject({ status: "Failed" });
    const failed = of(receiver, failing.nodeId);
    expect(failed.map(kindOf)).toEqual(["enrolled", "failed"]);
    expect(failed[1]!.data).toMatchObject({ nodeId: failing.nodeId, pool: "edge", code: "NodeStepFailed" });

    const ready = await world.enrol();
    await world.settle(ready.nodeId);
    const res = await world.app.call("POST", `/api/manage/nodes/${ready.nodeId}/decommission`, { headers: admin });
    expect(res.status).toBe(202);
    await world.settle(`${ready.nodeId}:offboard`);
    expect(of(receiver, ready.nodeId).map(kindOf)).toEqual(["enrolled", "ready", "offboarded"]);
    expect(new Set(receiver.events().map((e) => e.id)).size).toBe(receiver.events().length);
  });
});
