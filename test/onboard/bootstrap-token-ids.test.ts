/**
 * Bootstrap-token ids are 6 characters per cluster: a fleet's live tokens can draw one another node's token holds.
 * The activity must then leave that Secret alone, draw again, and hand its node a token that authenticates; and the
 * removal of a name a node recorded must never take another node's Secret. Real registry (Azurite), real sealed
 * secrets, the Kubernetes API emulator; only the token draw is forced, since chance cannot be asked for a collision.
 */
import { afterEach, describe, expect, it } from "vitest";
import { buildServices } from "../../functions/composition-root.js";
import { createKubeActivities } from "../../orchestrations/activities/kube.js";
import { BOOTSTRAP_SECRET_REF } from "../../orchestrations/activities/created-objects.js";
import { nodeContextOf } from "../../orchestrations/activities/node-context.js";
import { removeCreatedObject } from "../../orchestrations/activities/removal.js";
import { ArmClients } from "../../orchestrations/clients/arm/arm-clients.js";
import { bootstrapTokenSecret, NODE_ID_LABEL } from "../../orchestrations/clients/kube/index.js";
import { settings } from "../../orchestrations/settings.js";
import { emulatorCredential } from "../arm-emulator/index.js";
import { CLUSTER_ID, SERVICE_PRINCIPAL, startWorld, type World } from "./world.js";

let world: World;
afterEach(async () => {
  await world.close();
});

const OTHER_NODE = "node-other";
const OTHERS_TOKEN = "aaaaaa.0123456789abcdef";

async function setUp() {
  world = await startWorld();
  // The node is enrolled (its record and pool exist) but its saga is never run: the test is the activity.
  const { nodeId } = await world.enrol();
  const svc = buildServices(settings(), {
    arm: new ArmClients({ credential: emulatorCredential(SERVICE_PRINCIPAL), httpClient: world.arm.httpClient, retryOptions: { maxRetries: 0 } }),
    credential: emulatorCredential(SERVICE_PRINCIPAL),
  });
  const node = (await svc.registry.nodes.get(nodeId))!;
  const context = nodeContextOf(node, (await svc.registry.pools.get(node.pool))!, svc.settings);
  const { client } = await svc.kube(CLUSTER_ID);
  // Another node's live token, under the id the first draw will give.
  const others = bootstrapTokenSecret({ pool: context.pool, nodeId: OTHER_NODE, expiresAt: new Date(Date.now() + 3_600_000), token: OTHERS_TOKEN });
  expect(await client.createSecret("kube-system", others.secret)).toBe("created");
  return { svc, nodeId, context, client };
}

/** Draws the given tokens in turn, then fails: a draw the test did not plan for is a finding. */
function draws(...tokens: string[]): { mintToken: () => string; drawn: string[] } {
  const drawn: string[] = [];
  return {
    drawn,
    mintToken: () => {
      const next = tokens[drawn.length];
      if (next === undefined) throw new Error(`draw ${drawn.length + 1} was not planned`);
      drawn.push(next);
      return next;
    },
  };
}

describe("bootstrap token ids", () => {
  it("draws another id when its first is another node's token, leaves that Secret alone, and hands its node a token that authenticates", async () => {
    const { svc, nodeId, context, client } = await setUp();
    const mint = draws("aaaaaa.bbbbbbbbbbbbbbbb", "cccccc.dddddddddddddddd", "eeeeee.ffffffffffffffff");
    const acts = createKubeActivities(svc, { mintToken: mint.mintToken });

    const created = await acts.issueBootstrapToken({ context, ttlMs: 3_600_000 });
    expect(created).toEqual([
      { kind: "oneTimeSecret", id: BOOTSTRAP_SECRET_REF },
      { kind: "bootstrapToken", id: "bootstrap-token-cccccc", cluster: CLUSTER_ID },
    ]);
    // The other node's Secret is as it was: its secret, its node.
    const others = await client.getSecret("kube-system", "bootstrap-token-aaaaaa");
    expect(others?.data["token-secret"]).toBe("0123456789abcdef");
    expect(others?.labels[NODE_ID_LABEL]).toBe(OTHER_NODE);
    expect((await client.getSecret("kube-system", "bootstrap-token-cccccc"))?.labels[NODE_ID_LABEL]).toBe(nodeId);
    // The node records its own token's name, not the one it found taken.
    const recorded = (await svc.registry.nodes.get(nodeId))!.createdObjects;
    expect(recorded.filter((r) => r.includes("bootstrap-token-"))).toEqual([expect.stringMatching(/#bootstrap-token-cccccc$/)]);

    // A retried activity reuses the stored token (its one draw is discarded) and creates nothing more.
    expect(await acts.issueBootstrapToken({ context, ttlMs: 3_600_000 })).toEqual(created);
    expect(mint.drawn).toHaveLength(3);
    expect(
      world.kube
        .inspect()
        .secrets.filter((s) => s.name.startsWith("bootstrap-token-"))
        .map((s) => s.name),
    ).toEqual(["bootstrap-token-aaaaaa", "bootstrap-token-cccccc"]);

    // The kubeconfig the node fetches carries the token the cluster accepts as this pool's bootstrapper.
    const kubeconfig = await svc.secrets().take(nodeId, BOOTSTRAP_SECRET_REF, new Date());
    expect(kubeconfig).toContain("token: cccccc.dddddddddddddddd");
    expect(world.kube.authenticateBootstrapToken("cccccc.dddddddddddddddd")).toContain(`system:bootstrappers:flexnode:${context.pool}`);
    expect(world.kube.authenticateBootstrapToken(OTHERS_TOKEN)).toBeDefined();
  });

  it("gives up after five taken ids, saying so, with the other Secret untouched", async () => {
    const { svc, context, client } = await setUp();
    const taken = Array.from({ length: 6 }, () => "aaaaaa.bbbbbbbbbbbbbbbb");
    const acts = createKubeActivities(svc, { mintToken: draws(...taken).mintToken });
    await expect(acts.issueBootstrapToken({ context, ttlMs: 3_600_000 })).rejects.toThrow(/5 tries, each id taken in the cluster/);
    expect((await client.getSecret("kube-system", "bootstrap-token-aaaaaa"))?.data["token-secret"]).toBe("0123456789abcdef");
    expect(world.kube.inspect().secrets.filter((s) => s.name.startsWith("bootstrap-token-"))).toHaveLength(1);
  });

  it("removing a token name a node recorded takes only the Secret labelled with that node", async () => {
    const { svc, nodeId, client } = await setUp();
    // The name was recorded before the create found it taken (the activity failed between the two).
    await removeCreatedObject(svc, nodeId, { kind: "bootstrapToken", id: "bootstrap-token-aaaaaa", cluster: CLUSTER_ID });
    expect(await client.getSecret("kube-system", "bootstrap-token-aaaaaa")).toBeDefined();
    // The owner's removal takes it.
    await removeCreatedObject(svc, OTHER_NODE, { kind: "bootstrapToken", id: "bootstrap-token-aaaaaa", cluster: CLUSTER_ID });
    expect(await client.getSecret("kube-system", "bootstrap-token-aaaaaa")).toBeUndefined();
    // Absent is done.
    await removeCreatedObject(svc, OTHER_NODE, { kind: "bootstrapToken", id: "bootstrap-token-aaaaaa", cluster: CLUSTER_ID });
  });

  it("a stored token is replaced only while it is the one the caller drew: concurrent replacers end with one token", async () => {
    const { svc, nodeId } = await setUp();
    const secrets = svc.secrets();
    const ref = `${BOOTSTRAP_SECRET_REF}.token`;
    const expires = new Date(Date.now() + 3_600_000);
    await secrets.putIfAbsent(nodeId, ref, "aaaaaa.bbbbbbbbbbbbbbbb", expires, { offered: false });
    // Two runs of the activity found the same id taken and each drew another.
    const ends = await Promise.all(
      ["cccccc.dddddddddddddddd", "eeeeee.ffffffffffffffff"].map((next) =>
        secrets.replace(nodeId, ref, "aaaaaa.bbbbbbbbbbbbbbbb", next, expires, { offered: false }),
      ),
    );
    expect(ends[0]).toBe(ends[1]);
    expect(await secrets.peek(nodeId, ref)).toBe(ends[0]);
    // A caller whose expectation is stale replaces nothing and gets what is stored.
    expect(await secrets.replace(nodeId, ref, "aaaaaa.bbbbbbbbbbbbbbbb", "gggggg.hhhhhhhhhhhhhhhh", expires, { offered: false })).toBe(ends[0]);
    // The service's own row is never the node's to take.
    expect(await secrets.take(nodeId, ref, new Date())).toBeUndefined();
  });
});
