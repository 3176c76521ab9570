/**
 * Typed activity handles (Temporal's proxyActivities, for durable-functions): the sagas know the activities only as
 * types and call them through these handles, never by a string name with a cast result.
 *
 *   const put = yield* call(context, acts.putArcMachine, { context: ctx });   // put: { machine, principalId }
 *
 * Each handle carries the activity's wire name (the name history and the Durable extension know it by — never change
 * one) and, as types only, its input and output. The table must name every activity createAllActivities builds and
 * nothing else, so an activity added without a handle, or a handle without an activity, fails the type check.
 */
import type * as df from "durable-functions";
import type { OrchestrationContext } from "durable-functions";
import type { OnboardActivities } from "./create-activities.js";
import { paceRank } from "../clients/arm/pace-rank.js";
import { sagaTraceparent } from "../observability/tracing.js";

export interface ActivityHandle<I, O> {
  readonly name: string;
  /** Types only, never set: the activity's input and output (a function type keeps the input contravariant). */
  readonly signature?: (input: I) => O;
}

type HandleOf<F> = F extends (input: infer I) => Promise<infer O> ? ActivityHandle<I, O> : never;
export type ActivityHandles<T> = { readonly [K in keyof T]-?: HandleOf<T[K]> };

export const acts: ActivityHandles<OnboardActivities> = {
  reserve: { name: "onboard_reserve" },
  takeSlot: { name: "onboard_takeSlot" },
  markReady: { name: "onboard_markReady" },
  markFailed: { name: "onboard_markFailed" },
  claimForCompensation: { name: "onboard_claimForCompensation" },
  recordedObjects: { name: "onboard_recordedObjects" },
  compensationContext: { name: "onboard_compensationContext" },
  offboardBegin: { name: "offboard_begin" },
  offboardFinish: { name: "offboard_finish" },
  openMailbox: { name: "onboard_openMailbox" },
  sendStep: { name: "onboard_sendStep" },
  planSteps: { name: "onboard_planSteps" },
  putArcMachine: { name: "onboard_putArcMachine" },
  getArcPrincipal: { name: "onboard_getArcPrincipal" },
  grantRole: { name: "onboard_grantRole" },
  clusterInfo: { name: "onboard_clusterInfo" },
  ensurePoolRbac: { name: "onboard_ensurePoolRbac" },
  issueBootstrapToken: { name: "onboard_issueBootstrapToken" },
  expectKubeNode: { name: "onboard_expectKubeNode" },
  checkNodeReady: { name: "onboard_checkNodeReady" },
  removeObject: { name: "onboard_removeObject" },
  checkRemoval: { name: "onboard_checkRemoval" },
  publishLifecycleEvent: { name: "events_publishLifecycleEvent" },
};

/** The field of an activity's wire input that carries the saga's trace context; functions/activities.ts takes it off. */
export const TRACE_FIELD = "traceparent";
/** The field that carries the saga's rank for the ARM pacer (clients/arm/pace-rank.ts); taken off there too. */
export const PACE_FIELD = "paceRank";

/**
 * Calls an activity once and resolves to its typed output. The one cast of the sagas is here: the durable runtime
 * hands back the activity's JSON result untyped, and the handle's type says what the activity returned. The saga's
 * trace context (its input's `traceparent`, the same on every replay) rides along so the activity joins its trace, and
 * so does the saga's rank for the ARM pacer (from its input's `startedAt` and its instance id, equally fixed).
 */
export function* call<I, O>(context: OrchestrationContext, activity: ActivityHandle<I, O>, input: NoInfer<I>): Generator<df.Task, O, unknown> {
  const sagaInput = context.df.getInput();
  const traceparent = sagaTraceparent(sagaInput);
  const startedAt = (sagaInput as { startedAt?: unknown } | null)?.startedAt;
  const rank = typeof startedAt === "number" && Number.isFinite(startedAt) ? paceRank(startedAt, context.df.instanceId) : undefined;
  const riders = { ...(traceparent ? { [TRACE_FIELD]: traceparent } : {}), ...(rank ? { [PACE_FIELD]: rank } : {}) };
  return (yield context.df.callActivity(activity.name, Object.keys(riders).length > 0 ? { ...input, ...riders } : input)) as O;
}
