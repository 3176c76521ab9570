/**
 * The removal loop shared by compensation and offboarding: the objects go in reverse creation order (the Node object
 * and bootstrap token first, role grants before the machine, the mailbox last), each through the removeObject
 * activity with the Azure retry policy. One that still cannot be removed is reported, not fatal: the rest go on.
 */
import type * as df from "durable-functions";
import type { OrchestrationContext } from "durable-functions";
import { objectRef, type CreatedObject } from "../activities/created-objects.js";
import { acts } from "../activities/handles.js";
import { callAzure } from "./azure-call.js";
import type { Timing } from "./timing.js";

export interface Removal {
  removed: string[];
  remaining: string[];
}

/** `created` in creation order; returns the references removed and those that remain. */
export function* removeInReverse(
  context: OrchestrationContext,
  timing: Timing,
  nodeId: string,
  created: readonly CreatedObject[],
): Generator<df.Task, Removal, unknown> {
  const removed: string[] = [];
  const remaining: string[] = [];
  for (const o of [...created].reverse()) {
    try {
      yield* callAzure(context, timing, acts.removeObject, { nodeId, object: o });
      removed.push(objectRef(o));
    } catch {
      remaining.push(objectRef(o));
    }
  }
  return { removed, remaining };
}
