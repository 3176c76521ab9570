/**
 * Issue 13 item 3: resource events in both schemas an Event Grid subscription may deliver, fed through the real
 * trigger (`machineEvents`) as documented (MicrosoftDocs/azure-docs articles/event-grid/event-schema-resource-groups.md,
 * Event Grid schema at commit 031f9b5a15cd8276984bca9449e1cfc55dc201a3 and its "Cloud event schema" tab; the samples
 * are for a storage account and are replayed for the node's Arc machine: see test/arm-emulator/published-events.ts).
 */
import { afterEach, describe, expect, it } from "vitest";
import { ArmClients } from "../../orchestrations/clients/arm/arm-clients.js";
import { pathArg, subscriptionOf } from "../../orchestrations/clients/arm/resource-id.js";
import { documentedResourceEvent, emulatorCredential, toCloudEvent } from "../arm-emulator/index.js";
import { InvocationError } from "../functions-host/index.js";
import { SERVICE_PRINCIPAL, startWorld, type World } from "./world.js";

let world: World;
afterEach(async () => {
  await world.close();
});

const OPERATOR = "0badc0de-0000-4000-8000-000000000001";
const deliver = (w: World, e: unknown) => w.app.host.invoke("machineEvents", { string: JSON.stringify(e) });

describe("Event Grid: documented resource events in both schemas", () => {
  it("offboards on the documented ResourceDeleteSuccess in CloudEvents 1.0, and an empty evidence array drops nothing", async () => {
    world = await startWorld();
    const { nodeId } = await world.enrol();
    expect((await world.settle(nodeId)).output).toEqual({ status: "Ready" });
    const machineId = world.arm.inspect.machines()[0]!.id;
    world.arm.completePendingOperations();
    // The documented event stands for a real delete: the machine is gone when it arrives (a delete of a machine that
    // exists is a stale delivery, and ignored).
    await new ArmClients({ credential: emulatorCredential(OPERATOR), httpClient: world.arm.httpClient, retryOptions: { maxRetries: 0 } })
      .resources(subscriptionOf(machineId))
      .resources.beginDeleteByIdAndWait(pathArg(machineId), "2025-01-13", { updateIntervalInMs: 1 });

    const documented = documentedResourceEvent("delete", machineId, OPERATOR);
    const cloud = toCloudEvent({ ...documented, data: { ...documented.data, authorization: { ...documented.data.authorization, evidence: [] } } });
    expect(cloud).toMatchObject({ specversion: "1.0", type: "Microsoft.Resources.ResourceDeleteSuccess", source: documented.topic });
    const result = await deliver(world, cloud);
    expect(result.logs.at(-1)?.message).toBe(`machine event ${documented.id}: offboarding`);
    expect(world.app.simulator.instanceIds()).toContain(`${nodeId}:offboard`);
  });

  it("reads the caller from the documented Event Grid schema sample and ignores the service's own write", async () => {
    world = await startWorld();
    const { nodeId } = await world.enrol();
    expect((await world.settle(nodeId)).output).toEqual({ status: "Ready" });
    const machineId = world.arm.inspect.machines()[0]!.id;
    const own = documentedResourceEvent("write", machineId, SERVICE_PRINCIPAL);
    expect((await deliver(world, own)).logs.at(-1)?.message).toBe(`machine event ${own.id}: ignored (caused by the service itself)`);
    expect((await deliver(world, toCloudEvent(own))).logs.at(-1)?.message).toBe(`machine event ${own.id}: ignored (caused by the service itself)`);
  });

  it("fails the invocation, with an error log, for an event it cannot parse, so Event Grid retries and dead-letters it", async () => {
    world = await startWorld();
    for (const bad of [
      { nonsense: true },
      { specversion: "1.0", id: "c1", source: "/subscriptions/x", time: "2026-01-01T00:00:00Z", data: {} },
      {
        ...documentedResourceEvent("delete", "/subscriptions/s/resourceGroups/r/providers/Microsoft.HybridCompute/machines/m", OPERATOR),
        data: { claims: {} },
      },
    ]) {
      const failure = await deliver(world, bad).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(failure).toBeInstanceOf(InvocationError);
      const logs = (failure as InvocationError).logs;
      expect(logs.filter((l) => /unparseable Event Grid event/.test(l.message)).map((l) => l.level)).toContain("error");
    }
    expect(world.app.simulator.instanceIds()).toEqual([]);
  });
});
