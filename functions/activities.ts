/**
 * Every activity of the sagas, registered in this one place under its wire name (orchestrations/activities/handles.ts)
 * and built from the services of the invocation: the clients the composition root made, or a test's. An Azure 429
 * leaves an activity as an ArmThrottledError, whose Retry-After the exception-properties provider registered here
 * puts into the failure's FailureDetails for the saga to read (orchestrations/onboard/retry-after.ts).
 */
import * as df from "durable-functions";
import { createAllActivities, type OnboardActivities } from "../orchestrations/activities/create-activities.js";
import { acts } from "../orchestrations/activities/handles.js";
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
      handler: async (input: unknown) => {
        const activity = activityAt(activitiesOf(await services()), key);
        try {
          return await activity(input);
        } catch (error) {
          throw ArmThrottledError.from(error);
        }
      },
    });
  }
}

/** The wire hands an activity untyped JSON: this is where it meets the typed function it is for, by the handle's key. */
function activityAt(all: OnboardActivities, key: string): (input: unknown) => Promise<unknown> {
  return all[key as keyof OnboardActivities] as (input: unknown) => Promise<unknown>;
}
