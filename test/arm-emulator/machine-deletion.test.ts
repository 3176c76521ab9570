/**
 * The service's Arc machine deletion (orchestrations/clients/arm/machine-deletion.ts) against the emulator's async
 * DELETE as published (azure-rest-api-specs hybridcompute stable/2025-01-13/examples/machine/Machines_Delete.json at
 * 0fab7d2318277308e6ac552937b07dc68d30c30d: 202 with Location, Azure-AsyncOperation, Retry-After 200 | 204): each call is
 * one request, and what the 202 asked for comes back as data for the caller's timer.
 */
import { describe, expect, it } from "vitest";
import { ArmClients } from "../../orchestrations/clients/arm/arm-clients.js";
import { checkMachineDeletion, startMachineDeletion } from "../../orchestrations/clients/arm/machine-deletion.js";
import { pathArg } from "../../orchestrations/clients/arm/resource-id.js";
import { NO_RETRIES } from "./sdk-transport.js";
import { machineBody, machineId, newEmulator, serviceCredential, SUBSCRIPTION_ID } from "./test-fixtures.js";

async function setup(runForMs: number) {
  const { emulator, clock } = newEmulator({ machineDelete: { runForMs } });
  const arm = new ArmClients({ credential: serviceCredential, ...emulator.clientOptions(), ...NO_RETRIES });
  const rm = arm.resources(SUBSCRIPTION_ID);
  await rm.resources.beginCreateOrUpdateByIdAndWait(pathArg(machineId("m1")), "2025-01-13", machineBody());
  return { emulator, clock, arm, rm };
}

describe("machine deletion, one request at a time", () => {
  it("reads the 202's Retry-After and monitor, follows it to Succeeded, and counts an absent machine as done", async () => {
    const { emulator, clock, arm, rm } = await setup(300_000);
    const started = await startMachineDeletion(rm, arm.endpoint, machineId("m1"));
    expect(started).toMatchObject({
      done: false,
      retryAfterMs: 200_000,
      monitor: { kind: "asyncOperation", url: expect.stringContaining("/operationStatus/") },
    });
    if (started.done) throw new Error("unreachable");
    clock.advance(200_000);
    const running = await checkMachineDeletion(rm, arm.endpoint, machineId("m1"), started.monitor);
    expect(running).toMatchObject({ done: false, retryAfterMs: 200_000 });
    clock.advance(200_000);
    expect(await checkMachineDeletion(rm, arm.endpoint, machineId("m1"), started.monitor)).toEqual({ done: true });
    expect(emulator.inspect.machines()).toEqual([]);
    expect(await startMachineDeletion(rm, arm.endpoint, machineId("m1"))).toEqual({ done: true });
    expect(emulator.requests.filter({ route: "machines.delete" }).map((e) => e.status)).toEqual([202, 204]);
  });

  it("settles a monitor ARM no longer knows by the machine: gone is done", async () => {
    const { emulator, arm, rm } = await setup(300_000);
    const started = await startMachineDeletion(rm, arm.endpoint, machineId("m1"));
    if (started.done) throw new Error("expected a 202");
    emulator.reset();
    expect(await checkMachineDeletion(rm, arm.endpoint, machineId("m1"), started.monitor)).toEqual({ done: true });
  });
});
