/**
 * Each saga writes only the statuses it owns: an onboarding moves its node out of Enrolling/Onboarding (to Ready or
 * Failed), an offboarding out of Offboarding. A late write of a saga that lost the node (stopped by a decommission, or
 * overtaken by a new onboarding) must not overwrite the status the other saga wrote. The activities are called
 * directly on a real registry (Azurite), the node put in each status by hand.
 */
import { afterEach, describe, expect, it } from "vitest";
import { buildServices } from "../../functions/composition-root.js";
import { createRecordsActivities } from "../../orchestrations/activities/records.js";
import { ArmClients } from "../../orchestrations/clients/arm/arm-clients.js";
import type { NodeStatus } from "../../orchestrations/clients/registry/model.js";
import { settings } from "../../orchestrations/settings.js";
import { emulatorCredential } from "../arm-emulator/index.js";
import { SERVICE_PRINCIPAL, startWorld, type World } from "./world.js";

let world: World;
afterEach(async () => {
  await world.close();
});

async function setUp() {
  world = await startWorld();
  // The node is enrolled (its record and pool exist) but its saga is never run: the test is the activities.
  const { nodeId } = await world.enrol();
  const svc = buildServices(settings(), {
    arm: new ArmClients({ credential: emulatorCredential(SERVICE_PRINCIPAL), httpClient: world.arm.httpClient, retryOptions: { maxRetries: 0 } }),
    credential: emulatorCredential(SERVICE_PRINCIPAL),
  });
  const records = createRecordsActivities(svc);
  const put = async (status: NodeStatus) => {
    await svc.registry.nodes.update({ pool: "edge", nodeId }, () => ({ status }), "test", null);
  };
  const status = async () => (await svc.registry.nodes.get(nodeId))!.status;
  return { nodeId, records, put, status };
}

const failure = { code: "NodeStepFailed", message: "step sysctl failed", removed: [], remaining: [] };

describe("status writes of the sagas", () => {
  it("markReady and markFailed leave a node the offboarding has taken (Offboarding, Offboarded) as it is", async () => {
    const { nodeId, records, put, status } = await setUp();
    for (const taken of ["Offboarding", "Offboarded"] as const) {
      await put(taken);
      expect(await records.markReady({ nodeId })).toBe(false);
      expect(await status()).toBe(taken);
      expect(await records.markFailed({ nodeId, ...failure })).toBe(false);
      expect(await status()).toBe(taken);
    }
  }, 60_000);

  it("markFailed moves only an onboarding's node, and a repeat of the same mark answers as the first did", async () => {
    const { nodeId, records, put, status } = await setUp();
    // A node Ready (a Ready node's late compensation) or started over (Enrolling again is the onboarding's) meanwhile.
    await put("Ready");
    expect(await records.markFailed({ nodeId, ...failure })).toBe(false);
    expect(await status()).toBe("Ready");
    await put("Onboarding");
    expect(await records.markFailed({ nodeId, ...failure })).toBe(true);
    expect(await status()).toBe("Failed");
    expect(await records.markFailed({ nodeId, ...failure })).toBe(true);
    expect(await records.markFailed({ nodeId, ...failure, code: "Cancelled" })).toBe(false);
  }, 60_000);

  it("markReady moves Onboarding to Ready, and a repeat finds it Ready", async () => {
    const { nodeId, records, put, status } = await setUp();
    await put("Onboarding");
    expect(await records.markReady({ nodeId })).toBe(true);
    expect(await records.markReady({ nodeId })).toBe(true);
    expect(await status()).toBe("Ready");
  }, 60_000);

  it("offboardFinish leaves a node a new onboarding has taken as it is; from Offboarding it ends Offboarded, and a repeat finds it so", async () => {
    const { nodeId, records, put, status } = await setUp();
    for (const taken of ["Enrolling", "Onboarding", "Ready", "Failed"] as const) {
      await put(taken);
      expect(await records.offboardFinish({ nodeId, actor: "test", removed: [], remaining: [] })).toBe(false);
      expect(await records.offboardFinish({ nodeId, actor: "test", removed: [], remaining: ["arcMachine:x"] })).toBe(false);
      expect(await status()).toBe(taken);
    }
    await put("Offboarding");
    expect(await records.offboardFinish({ nodeId, actor: "test", removed: [], remaining: ["arcMachine:x"] })).toBe(true);
    expect(await status()).toBe("Offboarding");
    expect(await records.offboardFinish({ nodeId, actor: "test", removed: ["arcMachine:x"], remaining: [] })).toBe(true);
    expect(await records.offboardFinish({ nodeId, actor: "test", removed: ["arcMachine:x"], remaining: [] })).toBe(true);
    expect(await status()).toBe("Offboarded");
  }, 60_000);
});
