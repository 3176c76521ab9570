/**
 * Azure Resource Manager events as Event Grid delivers them, in either schema a subscription may choose: the Event
 * Grid schema (`eventType`, `eventTime`, `topic`) or CloudEvents 1.0 (`type`, `time`, `source`, `specversion`), with
 * the same `data` (azure-docs articles/event-grid/event-schema-resource-groups.md, both tabs). Only what the service
 * decides on is required; everything else in `data` is optional in practice (`httpRequest` only on updates and
 * deletes, `evidence` sometimes `[]` or without `principalId`), and a missing optional field must never drop an
 * event. An envelope neither schema describes is an UnparseableEventError: the trigger logs it and fails, so Event
 * Grid retries it (infra/pool.bicep's retry policy) instead of the event vanishing behind a success. The subscription
 * has no dead-letter destination: once the retries are spent Event Grid drops the event, and the logged error is what
 * is left of it.
 */
import { z } from "zod";

export const RESOURCE_WRITE_SUCCESS = "Microsoft.Resources.ResourceWriteSuccess";
export const RESOURCE_DELETE_SUCCESS = "Microsoft.Resources.ResourceDeleteSuccess";
const HANDLED = new Set([RESOURCE_WRITE_SUCCESS, RESOURCE_DELETE_SUCCESS]);

const OID = "http://schemas.microsoft.com/identity/claims/objectidentifier";

export class UnparseableEventError extends Error {
  constructor(
    readonly eventId: string | undefined,
    readonly field: string,
    reason: string,
  ) {
    super(`unparseable Event Grid event ${eventId ?? "(no id)"}: ${field}: ${reason}`);
    this.name = "UnparseableEventError";
  }
}

/** One resource event, whichever schema it came in. */
export interface ResourceEvent {
  id: string;
  type: string;
  time: string | undefined;
  resourceUri: string;
  /** Object id of whoever made the change, from the token claims or the authorization evidence. */
  caller: string | undefined;
}

const EventGridEnvelope = z.object({ id: z.string().min(1), eventType: z.string().min(1), eventTime: z.string().optional(), data: z.unknown() });
const CloudEventEnvelope = z.object({
  specversion: z.literal("1.0"),
  id: z.string().min(1),
  type: z.string().min(1),
  time: z.string().optional(),
  data: z.unknown(),
});

const ResourceData = z.object({
  resourceUri: z.string().min(1),
  claims: z.record(z.string(), z.unknown()).nullish(),
  authorization: z.object({ evidence: z.unknown() }).partial().nullish(),
});

/** A handled resource event, `{ ignoredType }` for any other event type, or an UnparseableEventError. */
export function parseResourceEvent(raw: unknown): ResourceEvent | { ignoredType: string } {
  const envelope = envelopeOf(raw);
  if (!HANDLED.has(envelope.type)) return { ignoredType: envelope.type };
  const data = ResourceData.safeParse(envelope.data);
  if (!data.success) {
    const issue = data.error.issues[0];
    throw new UnparseableEventError(envelope.id, ["data", ...(issue?.path ?? [])].join("."), issue?.message ?? "invalid");
  }
  const claims = data.data.claims ?? {};
  const claim = (name: string) => (typeof claims[name] === "string" ? claims[name] : undefined);
  const evidence = data.data.authorization?.evidence;
  const evidencePrincipal =
    typeof evidence === "object" && evidence !== null && typeof (evidence as { principalId?: unknown }).principalId === "string"
      ? (evidence as { principalId: string }).principalId
      : undefined;
  return {
    id: envelope.id,
    type: envelope.type,
    time: envelope.time,
    resourceUri: data.data.resourceUri,
    caller: claim(OID) ?? claim("oid") ?? evidencePrincipal,
  };
}

function envelopeOf(raw: unknown): { id: string; type: string; time: string | undefined; data: unknown } {
  const id = typeof raw === "object" && raw !== null && typeof (raw as { id?: unknown }).id === "string" ? (raw as { id: string }).id : undefined;
  if (typeof raw === "object" && raw !== null && "specversion" in raw) {
    const cloud = CloudEventEnvelope.safeParse(raw);
    if (!cloud.success) throw unparseable(id, cloud.error);
    return { id: cloud.data.id, type: cloud.data.type, time: cloud.data.time, data: cloud.data.data };
  }
  const grid = EventGridEnvelope.safeParse(raw);
  if (!grid.success) throw unparseable(id, grid.error);
  return { id: grid.data.id, type: grid.data.eventType, time: grid.data.eventTime, data: grid.data.data };
}

function unparseable(id: string | undefined, error: z.ZodError): UnparseableEventError {
  const issue = error.issues[0];
  return new UnparseableEventError(id, issue?.path.join(".") || "(event)", issue?.message ?? "neither the Event Grid schema nor CloudEvents 1.0");
}
