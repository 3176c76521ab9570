/** Reads of Arc machines the use cases need outside the saga (the saga's own calls live in its activities). */
import { isRestError } from "@azure/core-rest-pipeline";
import { API_VERSIONS, type ArmClients } from "./arm-clients.js";
import { ARC_MACHINES, subscriptionOf, pathArg } from "./resource-id.js";

/** The machine's tags as ARM has them now; undefined when it no longer exists. */
export async function machineTags(arm: ArmClients, machineId: string): Promise<Record<string, string> | undefined> {
  try {
    const machine = await arm.resources(subscriptionOf(machineId)).resources.getById(pathArg(machineId), API_VERSIONS[ARC_MACHINES]);
    return (machine.tags ?? {}) as Record<string, string>;
  } catch (error) {
    if (isRestError(error) && error.statusCode === 404) return undefined;
    throw error;
  }
}
