/**
 * What a node tells the service about itself at enrolment (and later through PUT /api/node/facts). The agent
 * gathers it; the service derives the node id from machineId + smbiosUuid and picks the plan from `immutable`.
 */
import * as z from "zod";

export const NodeFactsSchema = z.strictObject({
  hostname: z.string().regex(/^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/, "must be a hostname"),
  machineId: z.string().regex(/^[0-9a-fA-F]{32}$/, "must be the 32 hex digits of /etc/machine-id"),
  // guid, not uuid: firmware UUIDs often carry version nibble 0 or a non-RFC variant (RFC 9562 would refuse them).
  smbiosUuid: z.guid().optional().describe("DMI product UUID; absent on some boards"),
  osRelease: z.strictObject({
    id: z.string().max(64),
    versionId: z.string().max(64).optional(),
    variantId: z.string().max(64).optional(),
    prettyName: z.string().max(256).optional(),
  }),
  arch: z.enum(["amd64", "arm64"]),
  kernel: z.string().max(128),
  cpus: z.int().min(1).max(4096),
  memoryBytes: z.int().min(1),
  addresses: z.array(z.union([z.ipv4(), z.ipv6()])).max(64),
  immutable: z.strictObject({
    readOnlyUsr: z.boolean(),
    ostree: z.boolean().default(false),
    flatcar: z.boolean().default(false),
    kairos: z.boolean().default(false),
    bootc: z.boolean().default(false),
  }),
});
export type NodeFacts = z.infer<typeof NodeFactsSchema>;
