/** Shared ids and bodies for the emulator's own tests. */
import type { GenericResource } from "@azure/arm-resources";
import { ManualClock } from "../support/index.js";
import { ArmEmulator, type ArmEmulatorOptions } from "./arm-emulator.js";
import { emulatorCredential } from "./credential.js";
import { machineResourceId } from "./resource-id.js";

export const SUBSCRIPTION_ID = "00000000-0000-4000-8000-000000000001";
export const RESOURCE_GROUP = "rg-flex";
export const RG_SCOPE = `/subscriptions/${SUBSCRIPTION_ID}/resourceGroups/${RESOURCE_GROUP}`;
/** The onboarding service's own identity. */
export const SERVICE_PRINCIPAL_ID = "5e1f0000-0000-4000-8000-000000000001";
export const serviceCredential = emulatorCredential(SERVICE_PRINCIPAL_ID);

export function newEmulator(options: ArmEmulatorOptions = {}): { emulator: ArmEmulator; clock: ManualClock } {
  const clock = new ManualClock();
  const emulator = new ArmEmulator({
    clock,
    resourceGroups: [{ subscriptionId: SUBSCRIPTION_ID, name: RESOURCE_GROUP, location: "eastus" }],
    ...options,
  });
  return { emulator, clock };
}

export function machineId(name: string): string {
  return machineResourceId(SUBSCRIPTION_ID, RESOURCE_GROUP, name);
}

export function machineBody(tags: Record<string, string> = {}): GenericResource {
  return {
    location: "eastus",
    identity: { type: "SystemAssigned" },
    tags,
    properties: { osType: "linux", vmId: "0b0c7a55-0000-4000-8000-000000000001" },
  };
}
