/**
 * Issue 13 items 1 and 6, on the wire: the service reads and writes each resource type at one api-version, the one in
 * its table (orchestrations/clients/arm/arm-clients.ts API_VERSIONS), and sends every id and scope with a single
 * leading slash (the emulator refuses `//`), across onboarding, offboarding and the sweeper.
 */
import { describe, expect, it } from "vitest";
import { API_VERSIONS } from "../../orchestrations/clients/arm/arm-clients.js";
import { ArmClients } from "../../orchestrations/clients/arm/arm-clients.js";
import { buildServices } from "../../functions/composition-root.js";
import { settings } from "../../orchestrations/settings.js";
import { sweep } from "../../orchestrations/use-cases/sweep.js";
import { emulatorCredential, publishedTypeOf } from "../arm-emulator/index.js";
import { admin } from "../function-app/index.js";
import { SERVICE_PRINCIPAL, startWorld } from "./world.js";

describe("what the service sends to ARM", () => {
  it("one api-version per resource type, from the table, and no // path, for the saga, offboarding and the sweeper", async () => {
    const world = await startWorld();
    try {
      const { nodeId } = await world.enrol();
      expect((await world.settle(nodeId)).output).toEqual({ status: "Ready" });
      const svc = buildServices(settings(), {
        arm: new ArmClients({ credential: emulatorCredential(SERVICE_PRINCIPAL), httpClient: world.arm.httpClient, retryOptions: { maxRetries: 0 } }),
        credential: emulatorCredential(SERVICE_PRINCIPAL),
        mailbox: world.mailbox,
      });
      const noWorkflows = { start: async () => undefined, status: async () => undefined, terminate: async () => undefined, describe: async () => undefined };
      await sweep({ ...svc, now: () => new Date(world.clock.now()) }, noWorkflows, {
        sagaDeadlineMs: 3_600_000,
        removeOrphans: false,
        claimRetentionMs: 86_400_000,
      });
      expect(world.arm.requests.filter({ route: "machines.listByResourceGroup" })).not.toHaveLength(0);
      const decommission = await world.app.call("POST", `/api/manage/nodes/${nodeId}/decommission`, { headers: admin, body: { reason: "retired" } });
      expect(decommission.status).toBe(202);
      expect((await world.settle(`${nodeId}:offboard`)).output).toMatchObject({ remaining: [] });

      expect(world.arm.requests.filter({ status: 400 }).map((e) => `${e.method} ${e.path}: ${e.errorCode}`)).toEqual([]);
      const sent = new Map<string, Set<string>>();
      for (const e of world.arm.requests.entries) {
        if (e.principalId !== SERVICE_PRINCIPAL || !e.route || !e.apiVersion) continue;
        const type = publishedTypeOf(e.route)?.type ?? e.route;
        sent.set(type, (sent.get(type) ?? new Set()).add(e.apiVersion));
      }
      const expected = Object.fromEntries(Object.entries(API_VERSIONS).map(([type, v]) => [type, [v]]));
      expect(Object.fromEntries([...sent].map(([type, versions]) => [type, [...versions]]))).toEqual(expected);
    } finally {
      await world.close();
    }
  });
});
