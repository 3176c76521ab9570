/**
 * What a caller may write on a Microsoft.HybridCompute machine, from the 2025-01-13 schema
 * (azure-rest-api-specs specification/hybridcompute/resource-manager/Microsoft.HybridCompute/stable/2025-01-13/
 * HybridCompute.json at 0fab7d2318277308e6ac552937b07dc68d30c30d, definitions MachineProperties, MachineUpdateProperties,
 * ArcKindEnum, StatusTypes). Writable PUT properties are those the schema does not mark readOnly and the SDK's machine
 * serializer sends; everything else the machine reports (status, agentVersion, os*, profiles the agent fills in) is
 * the agent's or ARM's to write. The emulator refuses a body that sets one — stricter than an RP that might ignore it,
 * so a service that tries to write agent state fails here first. The refusal's code and wording are the emulator's.
 */
import { ArmError } from "./arm-error.js";

/** `StatusTypes` at 2025-01-13; a machine no agent has connected to reports `status: null` (Machines_CreateOrUpdate.json). */
export const MACHINE_STATUSES = ["Connected", "Disconnected", "Error"] as const;
export type MachineStatus = (typeof MACHINE_STATUSES)[number];

export const ARC_KINDS = ["AVS", "HCI", "SCVMM", "VMware", "EPS", "GCP", "AWS"] as const;

const PUT_WRITABLE = new Set([
  "locationData",
  "serviceStatuses",
  "cloudMetadata",
  "agentUpgrade",
  "osProfile",
  "licenseProfile",
  "vmId",
  "clientPublicKey",
  "osType",
  "extensions",
  "privateLinkScopeResourceId",
  "parentClusterResourceId",
  "mssqlDiscovered",
]);
/** `x-ms-mutability: [read, create]`. */
const CREATE_ONLY = new Set(["vmId"]);
const READ_ONLY = new Set([
  "provisioningState",
  "status",
  "lastStatusChange",
  "errorDetails",
  "agentVersion",
  "displayName",
  "machineFqdn",
  "osName",
  "osVersion",
  "vmUuid",
  "osSku",
  "osEdition",
  "domainName",
  "adFqdn",
  "dnsFqdn",
  "detectedProperties",
  "agentConfiguration",
  "hardwareProfile",
  "storageProfile",
  "firmwareProfile",
  "networkProfile",
]);
const PATCH_WRITABLE = new Set(["locationData", "osProfile", "cloudMetadata", "agentUpgrade", "parentClusterResourceId", "privateLinkScopeResourceId"]);

const refuse = (message: string) => new ArmError(400, "InvalidRequestContent", message);

export function checkMachinePut(
  body: { kind?: string | null; properties?: Record<string, unknown> | null },
  existing: Record<string, unknown> | undefined,
): void {
  const kind = body.kind ?? undefined;
  if (kind !== undefined && !ARC_KINDS.some((k) => k.toLowerCase() === kind.toLowerCase()))
    throw refuse(`The value '${kind}' of 'kind' is not one of ${ARC_KINDS.join(", ")}.`);
  for (const [key, value] of Object.entries(body.properties ?? {})) {
    if (READ_ONLY.has(key)) throw refuse(`The property 'properties.${key}' is read-only and cannot be set.`);
    if (!PUT_WRITABLE.has(key)) throw refuse(`The property 'properties.${key}' is not a property of Microsoft.HybridCompute/machines.`);
    if (existing && CREATE_ONLY.has(key) && existing[key] !== undefined && existing[key] !== value)
      throw refuse(`The property 'properties.${key}' can be set only when the machine is created.`);
  }
}

export function checkMachinePatch(body: { properties?: Record<string, unknown> | null }): void {
  for (const key of Object.keys(body.properties ?? {})) {
    if (!PATCH_WRITABLE.has(key)) throw refuse(`The property 'properties.${key}' cannot be updated with PATCH.`);
  }
}
