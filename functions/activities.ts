/**
 * Every activity of the sagas, registered in this one place under its wire name (orchestrations/activities/handles.ts)
 * and built from the services of the invocation: the clients the composition root made, or a test's. An Azure 429
 * leaves an activity as an ArmThrottledError, whose Retry-After the exception-properties provider registered here
 * puts into the failure's FailureDetails for the saga to read (orchestrations/onboard/retry-after.ts). Each run is a
 * span in the saga's trace (the `traceparent` the saga's call put on the input, taken off here), so the SDK calls the
 * activity makes become its children; its ARM requests are paced with the saga's rank (`paceRank`, taken off too).
 * A status write that freed a pool slot hands it to a waiting node in the same transaction; the activity then wakes
 * that node's saga (its Durable client is an input of every activity: any of them may free a slot).
 */
import type { InvocationContext } from "@azure/functions";
import * as df from "durable-functions";
import { collectHandoffs, type SlotHandoff } from "../orchestrations/clients/registry/slot-handoffs.js";
import { durableClientInput, durableClientOf } from "./durable-client.js";
import { wakeSlotWaiters } from "./slot-wakes.js";
import { createAllActivities, type OnboardActivities } from "../orchestrations/activities/create-activities.js";
import { acts, PACE_FIELD, TRACE_FIELD } from "../orchestrations/activities/handles.js";
import { withPaceRank } from "../orchestrations/clients/arm/pace-rank.js";
import { contextOf, inSpan, SpanKind } from "../orchestrations/observability/tracing.js";
import { ArmThrottledError, throttlingProperties } from "../orchestrations/onboard/retry-after.js";
import type { ServiceProvider, Services } from "../orchestrations/services.js";

export function registerActivities(services: ServiceProvider): void {
  df.app.setExceptionPropertiesProvider(throttlingProperties);
  // Built once per Services object (once per process in Azure; per test where a test swaps the services).
  const built = new WeakMap<Services, OnboardActivities>();
  const activitiesOf = (svc: Services): OnboardActivities => {
    let all = built.get(svc);
    if (!all) built.set(svc, (all = createAllActivities(svc)));
    return all;
  };
  const names = new Set<string>();
  for (const [key, handle] of Object.entries(acts)) {
    if (names.has(handle.name)) throw new Error(`two activities are named ${handle.name}`);
    names.add(handle.name);
    df.app.activity(handle.name, {
      extraInputs: [durableClientInput],
      handler: async (wire: unknown, context: InvocationContext) => {
        const { input, traceparent, rank } = untraced(wire);
        const activity = activityAt(activitiesOf(await services()), key);
        const handoffs: SlotHandoff[] = [];
        try {
          return await collectHandoffs(handoffs, () =>
            withPaceRank(rank, () =>
              inSpan(
                `activity ${handle.name}`,
                { parent: contextOf(traceparent), kind: SpanKind.INTERNAL, attributes: attributesOf(handle.name, input) },
                async () => {
                  try {
                    return await activity(input);
                  } catch (error) {
                    throw ArmThrottledError.from(error);
                  }
                },
              ),
            ),
          );
        } finally {
          if (handoffs.length > 0) await wakeSlotWaiters(durableClientOf(context), context, handoffs);
        }
      },
    });
  }
}

/** The activity's own input, and the trace context and pacing rank the saga added to it. */
function untraced(wire: unknown): { input: unknown; traceparent: unknown; rank: string | undefined } {
  if (typeof wire !== "object" || wire === null || !(TRACE_FIELD in wire || PACE_FIELD in wire))
    return { input: wire, traceparent: undefined, rank: undefined };
  const { [TRACE_FIELD]: traceparent, [PACE_FIELD]: rank, ...input } = wire as Record<string, unknown>;
  return { input, traceparent, rank: typeof rank === "string" ? rank : undefined };
}

/** Names only (the activity, its node): inputs can hold references to secrets, and attributes must never. */
function attributesOf(name: string, input: unknown): Record<string, string> {
  const i = input as { nodeId?: unknown; context?: { nodeId?: unknown } } | null;
  const nodeId = typeof i?.nodeId === "string" ? i.nodeId : typeof i?.context?.nodeId === "string" ? i.context.nodeId : undefined;
  return { "flexnode.activity": name, ...(nodeId ? { "flexnode.node": nodeId } : {}) };
}

/** The wire hands an activity untyped JSON: this is where it meets the typed function it is for, by the handle's key. */
function activityAt(all: OnboardActivities, key: string): (input: unknown) => Promise<unknown> {
  return all[key as keyof OnboardActivities] as (input: unknown) => Promise<unknown>;
}
