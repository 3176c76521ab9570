/**
 * Lifecycle events the service publishes for other systems (CloudEvents 1.0, to an Event Grid topic): a node was
 * enrolled, became Ready, failed, was offboarded, or a second key claiming its identity was quarantined. One zod
 * schema per type's `data` is the source of the JSON schemas in docs/events/ (test/contract checks they match).
 *
 * The event id is derived from (node id, run, type), so the same transition of the same saga run — replayed, its
 * activity retried, a duplicate node result — always carries the same id, and a consumer deduplicates by it.
 */
import { createHash } from "node:crypto";
import { z } from "zod";

export const LIFECYCLE_EVENT_PREFIX = "dev.flexnode.node.";

const Common = {
  nodeId: z.string().describe("The node id (fn- and 24 hex digits)"),
  pool: z.string().describe("The pool the node belongs to"),
  hostname: z.string().optional().describe("The host name the node reported at enrolment"),
};

export const LifecycleEventData = {
  enrolled: z.object({ ...Common, approvalRequired: z.boolean().describe("True when the node waits for an admin before onboarding") }),
  ready: z.object({ ...Common, run: z.string().describe("The onboarding run that made the node Ready") }),
  failed: z.object({
    ...Common,
    run: z.string().describe("The saga run that failed"),
    code: z.string().describe("Error code, e.g. NodeStepFailed"),
    message: z.string().describe("What failed, and what compensation removed"),
  }),
  offboarded: z.object({
    ...Common,
    run: z.string().describe("The offboarding run"),
    remaining: z.array(z.string()).describe("Objects that could not be removed"),
  }),
  quarantined: z.object({
    ...Common,
    claimKeyId: z.string().describe("Key id of the second key that claimed this node's machine identity"),
    reason: z.string(),
  }),
} as const;

export type LifecycleEventKind = keyof typeof LifecycleEventData;
export const LIFECYCLE_EVENT_KINDS = Object.keys(LifecycleEventData) as LifecycleEventKind[];
export type LifecycleData<K extends LifecycleEventKind> = z.infer<(typeof LifecycleEventData)[K]>;

/** A CloudEvent 1.0 as the service builds it (the attributes the Event Grid client sends on the wire). */
export interface LifecycleCloudEvent<K extends LifecycleEventKind = LifecycleEventKind> {
  specversion: "1.0";
  id: string;
  source: string;
  type: `${typeof LIFECYCLE_EVENT_PREFIX}${K}`;
  subject: string;
  time: string;
  datacontenttype: "application/json";
  dataschema: string;
  data: LifecycleData<K>;
}

/** The same (node, run, type) always gives the same id: a UUID-shaped SHA-256 of the three. */
export function lifecycleEventId(nodeId: string, run: string, kind: LifecycleEventKind): string {
  const h = createHash("sha256").update(`${nodeId}\n${run}\n${kind}`).digest("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

export function lifecycleEvent<K extends LifecycleEventKind>(kind: K, e: { run: string; time: string; data: LifecycleData<K> }): LifecycleCloudEvent<K> {
  const data = LifecycleEventData[kind].parse(e.data) as LifecycleData<K>;
  return {
    specversion: "1.0",
    id: lifecycleEventId(data.nodeId, e.run, kind),
    source: `/flexnode/pools/${data.pool}`,
    type: `${LIFECYCLE_EVENT_PREFIX}${kind}`,
    subject: `nodes/${data.nodeId}`,
    time: e.time,
    datacontenttype: "application/json",
    dataschema: `https://flexnode.dev/schemas/events/${LIFECYCLE_EVENT_PREFIX}${kind}.json`,
    data,
  };
}

/** The JSON schema (draft 2020-12) of one type's data, as documented in docs/events/. */
export function lifecycleDataSchema(kind: LifecycleEventKind): Record<string, unknown> {
  return {
    $id: `https://flexnode.dev/schemas/events/${LIFECYCLE_EVENT_PREFIX}${kind}.json`,
    title: `${LIFECYCLE_EVENT_PREFIX}${kind} data`,
    ...z.toJSONSchema(LifecycleEventData[kind], { target: "draft-2020-12" }),
  };
}
