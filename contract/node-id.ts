/**
 * A node's id is a pure function of its pool and machine identity, so a node that retries enrolment (or re-enrols
 * after a wipe) always lands on the same id: the same registry row, the same Durable instance, the same Arc machine
 * name. It is valid as all three (and as a Kubernetes node name): lowercase, 27 characters.
 */
import { createHash } from "node:crypto";

/** What a node id looks like on the wire (routes, envelopes, instance ids): `fn-` and 24 lowercase hex digits. */
export const NODE_ID_PATTERN = /^fn-[0-9a-f]{24}$/;
export const isNodeId = (value: string): boolean => NODE_ID_PATTERN.test(value);

/**
 * SMBIOS UUIDs that firmware ships on many machines at once; treating them as identity would make every such
 * machine look like a clone of the first.
 */
const PLACEHOLDER_UUIDS = new Set(["00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff", "03000200-0400-0500-0006-000700080009"]);

/** The machine's identity as the registry keys it: lowercase, placeholder SMBIOS UUIDs dropped. */
export function machineIdentity(facts: { machineId: string; smbiosUuid?: string }): { machineId: string; smbiosUuid?: string } {
  const uuid = facts.smbiosUuid?.toLowerCase();
  return { machineId: facts.machineId.toLowerCase(), smbiosUuid: uuid && !PLACEHOLDER_UUIDS.has(uuid) ? uuid : undefined };
}

export function deriveNodeId(pool: string, facts: { machineId: string; smbiosUuid?: string }): string {
  const identity = machineIdentity(facts);
  const digest = createHash("sha256")
    .update(["flexnode/node-id/v1", pool, identity.machineId, identity.smbiosUuid ?? ""].join("\n"))
    .digest("hex");
  return `fn-${digest.slice(0, 24)}`;
}
