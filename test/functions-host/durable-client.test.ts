/**
 * functions/durable-client.ts keeps one DurableClient, and the WorkflowClient over it, per binding: the same binding
 * (as the host sends it, a new object per invocation) reuses them; a changed binding (another endpoint, a rotated key)
 * gets ones built from it, never the stale ones. Checked by where the real client's requests land: two Durable
 * simulators on their own loopback endpoints. The WorkflowClient starts through the binding's rpcBaseUrl, or through
 * the DurableClient's creation URL when an extension binds none.
 */
import { InvocationContext } from "@azure/functions";
import { afterAll, describe, expect, it, vi } from "vitest";
import { durableClientInput, durableClientOf, durableOf } from "../../functions/durable-client.js";
import { registerOrderSaga, startDurableHarness, type DurableHarness } from "../durable/index.js";

registerOrderSaga();

const harnesses: DurableHarness[] = [];
afterAll(async () => {
  for (const h of harnesses) await h.close();
});

function invocationWith(binding: unknown): InvocationContext {
  const context = new InvocationContext({ functionName: "durableClientTest", options: { extraInputs: [durableClientInput] } });
  // The host deserialises the binding for every invocation: an equal object, never the same one.
  context.extraInputs.set(durableClientInput, structuredClone(binding));
  return context;
}

describe("durableClientOf", () => {
  it("builds one client per binding and a new one when the binding changes", async () => {
    const a = await startDurableHarness();
    const b = await startDurableHarness();
    harnesses.push(a, b);

    const first = durableClientOf(invocationWith(a.clientServer.binding));
    expect(durableClientOf(invocationWith(a.clientServer.binding))).toBe(first);

    const other = durableClientOf(invocationWith(b.clientServer.binding));
    expect(other).not.toBe(first);
    await other.startNew("sim_orderSaga", { instanceId: "order-b", input: { id: "b" } });
    expect(b.simulator.instanceIds()).toContain("order-b");
    expect(a.simulator.instanceIds()).not.toContain("order-b");

    const rotated = { ...a.clientServer.binding, requiredQueryStringParameters: "code=rotated" };
    const afterRotation = durableClientOf(invocationWith(rotated));
    expect(afterRotation).not.toBe(first);
    await afterRotation.startNew("sim_orderSaga", { instanceId: "order-a", input: { id: "a" } });
    expect(a.simulator.instanceIds()).toContain("order-a");
    expect(b.simulator.instanceIds()).not.toContain("order-a");
  });

  it("builds the WorkflowClient with the client, starting where the binding says", async () => {
    const a = await startDurableHarness();
    const b = await startDurableHarness();
    harnesses.push(a, b);

    const first = durableOf(invocationWith(a.clientServer.binding));
    expect(durableOf(invocationWith(a.clientServer.binding)).workflows).toBe(first.workflows);
    await first.workflows.start("sim_orderSaga", { instanceId: "wf-a", input: { id: "a" } });
    expect(a.simulator.getStatus("wf-a")?.input).toEqual({ id: "a" });
    expect(b.simulator.instanceIds()).not.toContain("wf-a");

    const { rpcBaseUrl: _none, ...legacy } = b.clientServer.binding;
    // On a local host (no WEBSITE_HOSTNAME) the library points creation URLs at localhost:7071; in Azure it keeps them.
    vi.stubEnv("WEBSITE_HOSTNAME", "flexnode-test.azurewebsites.net");
    const viaCreationUrl = durableOf(invocationWith(legacy));
    vi.unstubAllEnvs();
    expect(viaCreationUrl.workflows).not.toBe(first.workflows);
    await viaCreationUrl.workflows.start("sim_orderSaga", { instanceId: "wf-b", input: { id: "b" } });
    expect(b.simulator.getStatus("wf-b")?.input).toEqual({ id: "b" });
    expect(a.simulator.instanceIds()).not.toContain("wf-b");
  });
});
