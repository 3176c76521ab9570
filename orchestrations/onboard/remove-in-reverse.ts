/**
 * The removal loop shared by compensation and offboarding: the objects go in reverse creation order (the Node object
 * and bootstrap token first, role grants before the machine, the mailbox last), each through removeObject
 * (remove-object.ts: the Azure retry policy, and durable waits while ARM deletes the machine). One that still cannot be removed is reported, not fatal: the rest go on.
 */
import type * as df from "durable-functions";
import type { OrchestrationContext } from "durable-functions";
import { objectRef, type CreatedObject } from "../activities/created-objects.js";
import { removeObject } from "./remove-object.js";
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
      yield* removeObject(context, timing, nodeId, o);
      removed.push(objectRef(o));
    } catch {
      remaining.push(objectRef(o));
    }
  }
  return { removed, remaining };
}
