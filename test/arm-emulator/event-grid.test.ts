import { describe, expect, it } from "vitest";
import { ManualClock } from "../support/index.js";
import { ResourceEvents, type ResourceChange, type ResourceEvent } from "./event-grid.js";

const RG = "/subscriptions/00000000-0000-4000-8000-000000000001/resourceGroups/rg-arc";
const change = (kind: ResourceChange["kind"], name: string): ResourceChange => ({
  kind,
  resourceId: `${RG}/providers/Microsoft.HybridCompute/machines/${name}`,
  subscriptionId: "00000000-0000-4000-8000-000000000001",
  resourceGroup: "rg-arc",
  resourceProvider: "Microsoft.HybridCompute",
  resourceType: "machines",
  caller: { principalId: "p", tenantId: "t", appId: "a", principalType: "ServicePrincipal" },
  correlationId: "c",
});

describe("Event Grid resource events", () => {
  it("redelivers a published event to the listeners, late and out of order, and waits for them", async () => {
    let n = 0;
    const events = new ResourceEvents(new ManualClock(), () => `e${++n}`);
    const seen: string[] = [];
    events.subscribe(async (e) => {
      await new Promise((r) => setTimeout(r, 5));
      seen.push(`${e.id}:${e.eventType.endsWith("DeleteSuccess") ? "delete" : "write"}`);
    });
    const deleted = events.publish(change("delete", "m1"));
    await new Promise((r) => setTimeout(r, 20));
    events.publish(change("write", "m1"));
    await new Promise((r) => setTimeout(r, 20));
    expect(seen).toEqual(["e1:delete", "e2:write"]);

    // The old delete again, after the write that followed it; by id or as the event.
    await events.redeliver(deleted.id);
    expect(seen).toEqual(["e1:delete", "e2:write", "e1:delete"]);
    await events.redeliver(deleted);
    expect(seen.at(-1)).toBe("e1:delete");
    expect(events.published.map((e) => e.id)).toEqual(["e1", "e2"]);
  });

  it("records what a listener throws on redelivery, and refuses an event never published", async () => {
    const events = new ResourceEvents(new ManualClock(), () => "e1");
    const published = events.publish(change("delete", "m1"));
    events.subscribe((e: ResourceEvent) => {
      throw new Error(`failed ${e.id}`);
    });
    await events.redeliver(published.id);
    expect(events.listenerErrors.map(String)).toEqual(["Error: failed e1"]);
    await expect(events.redeliver("nope")).rejects.toThrow(/no event nope was published/);
  });
});
