import { inject } from "vitest";
import { afterEach, describe, expect, it } from "vitest";
import { Registry } from "../../orchestrations/clients/registry/registry.js";
import { admin, newNode, startApp, type TestApp, type TestNode, useStandInSaga } from "../function-app/index.js";

useStandInSaga();

let app: TestApp;
afterEach(async () => {
  await app.close();
});

const registry = () => new Registry({ connectionString: inject("azuriteConnectionString"), prefix: app.prefix });
const problemType = (res: { json: unknown }) => (res.json as { type: string }).type.replace("https://flexnode.dev/problems/", "");

/** The same machine (machine-id and SMBIOS UUID), with a freshly generated key: a clone, or a re-imaged host. */
function cloneOf(node: TestNode): TestNode {
  const copy = newNode();
  return { ...copy, facts: { ...node.facts, hostname: "edge-clone" } };
}

async function setup(clonePolicy: "reject" | "quarantine" | "replace") {
  app = await startApp();
  expect((await app.createPool("edge", { clonePolicy })).status).toBe(201);
  const token = await app.createToken("edge", { maxUses: 10 });
  const original = newNode();
  const first = await app.enrol(original, token);
  expect(first.status).toBe(201);
  const { nodeId, keyId } = first.json as { nodeId: string; keyId: string };
  await app.simulator.runUntilIdle();
  return { token, original, nodeId, keyId };
}

describe("clone policy: the same machine identity enrols with a new key", () => {
  it("reject: refuses the newcomer and leaves the enrolled node untouched", async () => {
    const { token, original, nodeId, keyId } = await setup("reject");
    const before = await registry().nodes.get(nodeId);
    const res = await app.enrol(cloneOf(original), token);
    expect([res.status, problemType(res)]).toEqual([409, "clone-rejected"]);
    const after = (await registry().nodes.get(nodeId))!;
    expect(after.keyId).toBe(keyId);
    expect(after.etag).toBe(before!.etag);
    expect((await registry().tokens.get(token.split(".")[1]!))!.uses).toBe(1);
    expect((await registry().audit.list({ objectId: nodeId })).map((a) => a.action)).toContain("node.clone-detected");
  });

  it("quarantine: holds the newcomer's claim for an admin; approving it re-keys the node and restarts onboarding", async () => {
    const { token, original, nodeId, keyId } = await setup("quarantine");
    const clone = cloneOf(original);
    const res = await app.enrol(clone, token);
    expect(res.status).toBe(202);
    expect(res.json).toMatchObject({ nodeId, approval: "clone-quarantined" });
    // The original keeps running with its own key; the claim waits.
    const held = (await registry().nodes.get(nodeId))!;
    expect(held).toMatchObject({ keyId, status: "Enrolling", pendingClaim: { keyId: (res.json as { keyId: string }).keyId } });
    expect((await app.enrol(clone, token)).status).toBe(202);

    // Approval must wait for the running saga to stop first.
    const early = await app.call("POST", `/api/manage/nodes/${nodeId}/approve`, { headers: admin });
    expect([early.status, problemType(early), early.headers["retry-after"]]).toEqual([409, "clone-replace-pending", "5"]);
    await app.simulator.runUntilIdle();
    expect(app.simulator.getStatus(nodeId)?.runtimeStatus).toBe("Terminated");

    const approved = await app.call("POST", `/api/manage/nodes/${nodeId}/approve`, { headers: admin });
    expect(approved.status).toBe(200);
    expect(approved.json).toMatchObject({ keyId: (res.json as { keyId: string }).keyId, status: "Enrolling" });
    expect((approved.json as { pendingClaim?: unknown }).pendingClaim).toBeUndefined();
    expect(app.simulator.getStatus(nodeId)?.runtimeStatus).toBe("Pending");
    // The old key no longer identifies the node.
    expect(await registry().nodes.getByKey(keyId)).toBeUndefined();
  });

  it("quarantine: a second claim never overwrites the one waiting for an admin; it is refused and recorded", async () => {
    const { token, original, nodeId, keyId } = await setup("quarantine");
    const first = cloneOf(original);
    const firstKey = ((await app.enrol(first, token)).json as { keyId: string }).keyId;
    const usesBefore = (await registry().tokens.get(token.split(".")[1]!))!.uses;

    const second = cloneOf(original);
    const res = await app.enrol(second, token);
    expect([res.status, problemType(res)]).toEqual([409, "clone-claim-pending"]);
    expect(res.json).not.toHaveProperty("mailbox");
    const node = (await registry().nodes.get(nodeId))!;
    expect(node).toMatchObject({ keyId, pendingClaim: { keyId: firstKey } });
    expect((await registry().tokens.get(token.split(".")[1]!))!.uses).toBe(usesBefore);
    const refused = (await registry().audit.list({ objectId: nodeId })).find((a) => a.action === "node.clone-claim-refused");
    expect(refused?.details).toMatchObject({ heldKeyId: firstKey, keyId: expect.not.stringMatching(firstKey) });
    // The first claim still answers as waiting; once an admin drops it, the next claim may wait in its place.
    expect((await app.enrol(first, token)).status).toBe(202);
    expect((await app.call("POST", `/api/manage/nodes/${nodeId}/reject`, { headers: admin })).status).toBe(200);
    expect((await app.enrol(second, token)).status).toBe(202);
    expect((await registry().nodes.get(nodeId))!.pendingClaim?.keyId).not.toBe(firstKey);
  });

  it("quarantine: a clone with its own SMBIOS UUID becomes a separate node awaiting approval", async () => {
    const { token, original, nodeId } = await setup("quarantine");
    const sibling = newNode({ machineId: original.facts.machineId });
    const res = await app.enrol(sibling, token);
    expect(res.status).toBe(202);
    const sib = (await registry().nodes.get((res.json as { nodeId: string }).nodeId))!;
    expect(sib).toMatchObject({ status: "AwaitingApproval", cloneOf: nodeId });
    // The original keeps its fingerprint: a third machine with the same machine-id is still judged against it.
    expect(await registry().nodes.fingerprintOwners("edge", { machineId: original.facts.machineId })).toEqual([nodeId]);
  });

  it("quarantine: a clone the admin rejected, enrolling again, is quarantined again: no saga, no slot", async () => {
    const { token, original, nodeId } = await setup("quarantine");
    const sibling = newNode({ machineId: original.facts.machineId });
    const sibId = ((await app.enrol(sibling, token)).json as { nodeId: string }).nodeId;
    expect((await app.call("POST", `/api/manage/nodes/${sibId}/reject`, { headers: admin })).status).toBe(200);

    const again = await app.enrol(sibling, token);
    expect(again.status).toBe(202);
    expect(again.json).toMatchObject({ nodeId: sibId, status: "AwaitingApproval", approval: "clone-quarantined" });
    expect(await registry().nodes.get(sibId)).toMatchObject({ status: "AwaitingApproval", cloneOf: nodeId, lastError: { code: "Rejected" } });
    expect(app.simulator.getStatus(sibId)).toBeUndefined();
    expect((await registry().pools.get("edge"))!.inFlight).toBe(1);
  });

  it("replace: the newcomer takes over the identity once the old saga has stopped", async () => {
    const { token, original, nodeId, keyId } = await setup("replace");
    const clone = cloneOf(original);
    const pending = await app.enrol(clone, token);
    expect([pending.status, problemType(pending)]).toEqual([409, "clone-replace-pending"]);
    expect((await registry().nodes.get(nodeId))!.keyId).toBe(keyId);
    await app.simulator.runUntilIdle();

    const res = await app.enrol(clone, token);
    expect(res.status).toBe(201);
    expect(res.json).toMatchObject({ nodeId, status: "Enrolling" });
    const node = (await registry().nodes.get(nodeId))!;
    expect(node.keyId).toBe((res.json as { keyId: string }).keyId);
    expect(node.facts.hostname).toBe("edge-clone");
    expect(app.simulator.getStatus(nodeId)?.runtimeStatus).toBe("Pending");
    expect((await registry().tokens.get(token.split(".")[1]!))!.uses).toBe(2);
    // Latest key wins, every time: the original retrying with its old key is now the clone, and stops the newcomer's
    // saga. Right for re-imaged hosts; for true clones it ping-pongs, which is why the pool default is reject.
    const back = await app.enrol(original, token);
    expect([back.status, problemType(back)]).toEqual([409, "clone-replace-pending"]);
  });
});
