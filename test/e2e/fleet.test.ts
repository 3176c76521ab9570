/**
 * Fifty nodes at once, each a real agent in its own sandbox root: all end Ready, and the Service Bus emulator's own
 * delivery log shows that no node ever received another node's message — every envelope was delivered only from its
 * node's queue, on a link authorized by a Listen token scoped to that queue, and carried that node's id; every result
 * went to node-results on a Send-only link and named the node whose key signed it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REJECTED_RESULTS_QUEUE, RESULTS_QUEUE } from "../../orchestrations/clients/mailbox/mailbox.js";
import type { EntryOf } from "../servicebus-emulator/index.js";
import { planFor, sandboxHostSide, startFleet, type Fleet, type NodeOutcome, type NodeSpec, type Stack } from "../sandbox/index.js";
import { nodeQueues, startE2eStack, stepsOf } from "./support.js";

const NODES = 50;

let stack: Stack;
let fleet: Fleet | undefined;
let outcomes: NodeOutcome[] = [];

beforeAll(async () => {
  ({ stack } = await startE2eStack());
  const { enrolmentUrl } = await stack.createToken({ maxUses: NODES });
  // Mostly Flatcar; every fifth an Ubuntu host, so both plans run side by side.
  const specs: NodeSpec[] = Array.from({ length: NODES }, (_, i) => ({
    name: `edge-${String(i + 1).padStart(2, "0")}`,
    immutable: i % 5 !== 4,
    arch: "amd64",
    index: i + 1,
  }));
  fleet = await startFleet({ stack, enrolmentUrl, hostSide: sandboxHostSide, specs });
  outcomes = await fleet.settle(200_000);
}, 240_000);

afterAll(async () => {
  await fleet?.stop({ removeRoots: true });
  await stack?.close();
});

describe(`${NODES} nodes onboarding at once`, () => {
  it("all end Ready, each having run its own plan once", () => {
    const notReady = outcomes
      .filter((o) => o.status !== "Ready")
      .map((o) => ({ node: o.node.spec.name, status: o.status, saga: o.saga?.output ?? o.saga?.customStatus, error: o.node.error }));
    expect(notReady).toEqual([]);
    for (const o of outcomes) {
      const plan = planFor({ immutable: o.node.spec.immutable, arch: o.node.spec.arch, catalog: stack.artifacts.catalog });
      expect(stepsOf(o.node), o.node.spec.name).toEqual(plan.map((s) => `${s.stepId}#1 succeeded`));
    }
    const ids = outcomes.map((o) => o.node.nodeId!);
    expect(new Set(ids).size).toBe(NODES);
    expect(
      stack.arm.inspect
        .machines()
        .map((m) => m.name)
        .sort(),
    ).toEqual([...ids].sort());
    expect(stack.arm.inspect.roleAssignments()).toHaveLength(2 * NODES);
    expect(
      stack.kube
        .inspect()
        .nodes.map((n) => `${n.name} ${n.ready}`)
        .sort(),
    ).toEqual(ids.map((id) => `${id} True`).sort());
    expect(stack.kube.inspect().secrets.filter((s) => s.type === "bootstrap.kubernetes.io/token")).toEqual([]);
    expect(nodeQueues(stack).sort()).toEqual(ids.map((id) => `node-${id}`).sort());
  });

  it("no node ever received another node's message (the broker's delivery log)", () => {
    const log = stack.sb.log;
    const enqueued = new Map<string, EntryOf<"enqueued">>();
    for (const e of log.entries) if (e.kind === "enqueued") enqueued.set(`${e.queue}#${e.sequenceNumber}`, e);
    const deliveries = log.entries.filter((e): e is EntryOf<"delivered"> => e.kind === "delivered" && e.queue.startsWith("node-fn-"));
    const nodeIds = new Set(outcomes.map((o) => o.node.nodeId!));
    const connections = new Map<string, Set<string>>();
    const wrong: string[] = [];
    for (const d of deliveries) {
      const owner = d.queue.slice("node-".length);
      const body = enqueued.get(`${d.queue}#${d.sequenceNumber}`)?.body as { nodeId?: string } | undefined;
      if (!nodeIds.has(owner)) wrong.push(`${d.queue}: not a node of this run`);
      if (body?.nodeId !== owner) wrong.push(`${d.queue}#${d.sequenceNumber}: envelope for ${String(body?.nodeId)}`);
      if (d.link.authorizedBy.ruleName !== "flexnode-node-listen" || !d.link.authorizedBy.scopeUri.endsWith(`/${d.queue}`))
        wrong.push(`${d.queue}#${d.sequenceNumber}: delivered on a link authorized by ${JSON.stringify(d.link.authorizedBy)}`);
      const seen = connections.get(d.link.connectionId) ?? new Set<string>();
      seen.add(d.queue);
      connections.set(d.link.connectionId, seen);
    }
    expect(wrong).toEqual([]);
    // Each receiving connection only ever took messages from one queue: its node's.
    expect([...connections.values()].filter((queues) => queues.size !== 1)).toEqual([]);
    // Every node got exactly its plan's envelopes, each once (no lock lapsed, no redelivery).
    for (const o of outcomes) {
      const mine = deliveries.filter((d) => d.queue === `node-${o.node.nodeId!}`);
      expect(mine.length, o.node.spec.name).toBe(planFor({ immutable: o.node.spec.immutable, arch: "amd64", catalog: stack.artifacts.catalog }).length);
      expect(new Set(mine.map((d) => d.sequenceNumber)).size, `${o.node.spec.name}: a message delivered twice`).toBe(mine.length);
    }
    // And each agent only ever started steps of its own saga.
    const foreign = outcomes.flatMap((o) =>
      o.node.events.flatMap(({ event: e }) =>
        e.type === "step-started" && !e.sagaId.startsWith(`${o.node.nodeId!}@`) ? [`${o.node.spec.name} ran ${e.sagaId}/${e.stepId}`] : [],
      ),
    );
    expect(foreign).toEqual([]);
    expect(outcomes.flatMap((o) => o.node.events.filter((e) => e.event.type === "envelope-refused"))).toEqual([]);
  });

  it("results went to node-results on Send-only links, each naming the node that sent it", () => {
    const log = stack.sb.log;
    const results = log.entries.filter((e): e is EntryOf<"enqueued"> => e.kind === "enqueued" && e.queue === RESULTS_QUEUE);
    expect(results.length).toBe(outcomes.reduce((n, o) => n + stepsOf(o.node).length, 0));
    const bad = results.filter((r) => r.link.authorizedBy.ruleName !== "flexnode-node-send" || !r.link.authorizedBy.scopeUri.endsWith(`/${RESULTS_QUEUE}`));
    expect(bad.map((r) => r.link.authorizedBy)).toEqual([]);
    // A result's sender connection belongs to exactly one node: the one named in every result it carried.
    const byConnection = new Map<string, Set<string>>();
    for (const r of results) {
      const nodeId = (r.body as { nodeId: string }).nodeId;
      byConnection.set(r.link.connectionId, (byConnection.get(r.link.connectionId) ?? new Set()).add(nodeId));
    }
    expect([...byConnection.values()].filter((ids) => ids.size !== 1)).toEqual([]);
    expect(stack.sb.inspect.queue(REJECTED_RESULTS_QUEUE)?.active).toBe(0);
    expect(stack.triggers.invocations.filter((i) => i.outcome !== "completed")).toEqual([]);
  });
});
