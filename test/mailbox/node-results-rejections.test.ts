/**
 * The node-results use case against the registry on Azurite (whose answers to bad keys match Azure's in kind: an
 * error, not a miss): messages whose ids Azure Tables refuses as keys are rejected or claimed, never thrown back for
 * redelivery; and a message is charged to the node it names only once that node's signature verified it.
 */
import { generateKeyPairSync, type KeyObject } from "node:crypto";
import { describe, expect, it } from "vitest";
import { exportPublicKey, keyIdOf } from "../../contract/keys.js";
import { deriveNodeId } from "../../contract/node-id.js";
import { buildStepResult } from "../../contract/step-result.js";
import type { Registry } from "../../orchestrations/clients/registry/registry.js";
import { handleNodeResult, REJECTIONS_PER_WINDOW, type NodeResultOutcome } from "../../orchestrations/use-cases/node-results.js";
import { freshRegistry, newNodeInput, poolSpec } from "../registry/fixtures.js";

const RUN = "0123456789ab";

async function enrolled(registry: Registry, name: string): Promise<{ nodeId: string; privateKey: KeyObject }> {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const nodeId = deriveNodeId("edge", { machineId: name });
  await registry.nodes.create({ ...newNodeInput("edge", nodeId), publicKey: exportPublicKey(publicKey), keyId: keyIdOf(publicKey) }, "test");
  return { nodeId, privateKey };
}

function signed(privateKey: KeyObject, fields: { nodeId: string; sagaId?: string; stepId?: string }): string {
  const at = new Date();
  return JSON.stringify(
    buildStepResult(
      {
        nodeId: fields.nodeId,
        sagaId: fields.sagaId ?? `${fields.nodeId}@${RUN}`,
        stepId: fields.stepId ?? "step-1",
        attempt: 1,
        outcome: "succeeded",
        startedAt: at,
        finishedAt: at,
        manifestDigest: `sha256:${"a".repeat(64)}`,
      },
      { privateKey },
    ),
  );
}

async function setup() {
  const { registry } = await freshRegistry();
  await registry.pools.create("edge", poolSpec(), "test");
  const raised: { instanceId: string; eventName: string }[] = [];
  const deps = { registry, raiseEvent: async (instanceId: string, eventName: string) => void raised.push({ instanceId, eventName }) };
  return { registry, raised, deps };
}

const rejectedAudit = async (registry: Registry) => (await registry.audit.list()).filter((a) => a.action === "result.rejected");

describe("node-results: ids Azure Tables refuses as keys", () => {
  it("rejects and records a message naming a node id with '/', '#' or '?', instead of failing the lookup", async () => {
    const { registry, deps } = await setup();
    const stranger = generateKeyPairSync("ed25519").privateKey;
    for (const nodeId of ["fn/../x", "fn-a#b", "fn?x", "fn\\x"]) {
      const out = await handleNodeResult(signed(stranger, { nodeId }), deps);
      expect(out).toMatchObject({ kind: "rejected", recorded: true, digest: { reason: "UnknownNode" } });
      expect(out.kind === "rejected" ? Object.keys(out.digest).sort() : out).toEqual(["description", "reason", "sha256", "size"]);
    }
    const audit = await rejectedAudit(registry);
    expect(audit.map((a) => [a.objectId, a.details?.reason])).toEqual(Array(4).fill(["unknown", "UnknownNode"]));
  });

  it("claims a genuinely signed result whose step or saga id holds such characters: raised once, then a duplicate", async () => {
    const { deps, raised } = await setup();
    const { nodeId, privateKey } = await enrolled(deps.registry, "m-1");
    const bodies = [
      signed(privateKey, { nodeId, stepId: "a/b?c#d\\e" }),
      signed(privateKey, { nodeId, sagaId: `${nodeId}:off/board@${RUN}` }),
      signed(privateKey, { nodeId, stepId: `~sha256:${"0".repeat(64)}` }),
    ];
    for (const body of bodies) {
      expect(await handleNodeResult(body, deps)).toMatchObject({ kind: "raised", nodeId });
      expect(await handleNodeResult(body, deps)).toMatchObject({ kind: "duplicate", nodeId });
    }
    expect(raised.map((r) => r.instanceId)).toEqual([nodeId, `${nodeId}:off/board`, nodeId]);
  });
});

describe("node-results: who is charged for a rejection", () => {
  it("charges forgeries naming node B to the unknown sender, so B's own rejected results are still recorded", async () => {
    const { registry, deps } = await setup();
    const b = await enrolled(registry, "m-b");
    const a = await enrolled(registry, "m-a");
    // Node A holds a Send token like every node's and signs "B's" results with its own key.
    const forged: NodeResultOutcome[] = [];
    for (let i = 0; i < REJECTIONS_PER_WINDOW; i++) forged.push(await handleNodeResult(signed(a.privateKey, { nodeId: b.nodeId, stepId: `s${i}` }), deps));
    expect(forged.every((o) => o.kind === "rejected" && o.digest.reason === "SignatureInvalid" && o.recorded)).toBe(true);
    expect(forged[0]).toMatchObject({ digest: { claimedNodeId: b.nodeId } });
    expect(forged.filter((o) => o.kind === "rejected" && o.digest.nodeId !== undefined)).toEqual([]);

    // B's own result, genuinely signed but for a saga that is not B's: B sent it, so it is charged to B, and recorded.
    const own = await handleNodeResult(signed(b.privateKey, { nodeId: b.nodeId, sagaId: `${a.nodeId}@${RUN}` }), deps);
    expect(own).toMatchObject({ kind: "rejected", recorded: true, digest: { reason: "UnknownSaga", nodeId: b.nodeId } });

    const audit = await rejectedAudit(registry);
    expect(audit.filter((e) => e.objectId === b.nodeId).map((e) => e.details?.reason)).toEqual(["UnknownSaga"]);
    const unknown = audit.filter((e) => e.objectId === "unknown");
    expect(unknown).toHaveLength(REJECTIONS_PER_WINDOW);
    expect(unknown.every((e) => e.details?.reason === "SignatureInvalid" && e.details?.claimedNodeId === b.nodeId)).toBe(true);

    // The unknown sender's quota is what the flood spent.
    const more = await handleNodeResult(signed(a.privateKey, { nodeId: b.nodeId }), deps);
    expect(more).toMatchObject({ kind: "rejected", recorded: false, firstOverQuota: true });
  });
});
