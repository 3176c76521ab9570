/**
 * The registry side of the sagas: the node's status through onboarding and offboarding, the node context each saga
 * starts from, and the record of what was created for the node (`record`, used by every activity that creates or
 * removes something, *before* the call that creates it).
 */
import type { NodeRecord } from "../clients/registry/model.js";
import type { NodeChange } from "../clients/registry/nodes.js";
import type { Registry } from "../clients/registry/registry.js";
import type { Timing } from "../onboard/timing.js";
import type { Services } from "../services.js";
import { objectRef, parseObjectRef, type CreatedObject } from "./created-objects.js";
import { nodeContextOf, timingOverrides, type NodeContext } from "./node-context.js";

export type RecordsDeps = Pick<Services, "registry" | "settings" | "now">;

/** What a saga that may reach the agent needs: the node context when the node has a mailbox, and the timing. */
export interface AgentReach {
  context?: NodeContext;
  timing?: Partial<Timing>;
}

/** Adds or removes objects on the node's record (one write); idempotent, and a no-op for an unknown node. */
export async function record(registry: Registry, nodeId: string, objs: CreatedObject | CreatedObject[], change: "add" | "remove"): Promise<void> {
  if (!nodeId) return;
  const refs = (Array.isArray(objs) ? objs : [objs]).map(objectRef);
  const patch = (n: NodeRecord): NodeChange | undefined => {
    const todo = refs.filter((ref) => n.createdObjects.includes(ref) !== (change === "add"));
    if (todo.length === 0) return undefined;
    return { createdObjects: change === "add" ? [...n.createdObjects, ...todo] : n.createdObjects.filter((r) => !todo.includes(r)) };
  };
  // Not audited one by one: the node's record holds them, and the audit row of the status change that ends the run
  // (Ready, Failed, Offboarded) lists them (nodes.ts).
  const action = null;
  // The saga's activities record one object after another: the copy this process wrote last is usually current, and
  // saves a read. Only a change is made on it (under its ETag); "nothing to do" is decided on a fresh read.
  const recent = registry.nodes.recent(nodeId);
  if (recent && patch(recent)) {
    try {
      await registry.nodes.update(recent, patch, "service:onboard", action);
      return;
    } catch {
      // e.g. the node is gone: decided below, on a fresh read, as before
    }
  }
  const node = await registry.nodes.get(nodeId);
  if (!node) return;
  await registry.nodes.update(node, patch, "service:onboard", action);
}

export function createRecordsActivities({ registry, settings, now }: RecordsDeps) {
  return {
    /** The node moves Enrolling → Onboarding (a repeat finds it Onboarding); returns what the saga knows of it. */
    reserve: async (input: { nodeId: string; pool: string }): Promise<NodeContext> => {
      const node = await registry.nodes.getInPool(input.pool, input.nodeId);
      const pool = await registry.pools.spec(input.pool);
      if (!node || !pool) throw new Error(`node ${input.nodeId} or pool ${input.pool} is not in the registry`);
      if (node.status === "Enrolling")
        await registry.nodes.update(node, () => ({ status: "Onboarding", lastError: undefined }), "service:onboard", "node.onboarding", {
          expect: ["Enrolling"],
        });
      else if (node.status !== "Onboarding") throw new Error(`node ${input.nodeId} is ${node.status}; only an enrolling node can be onboarded`);
      return nodeContextOf(node, pool, settings);
    },

    markReady: async (input: { nodeId: string }): Promise<void> => {
      // The copy this process last wrote (usually reserve's or the last record's) saves a read; its ETag guards it.
      const recent = registry.nodes.recent(input.nodeId);
      const node = recent && recent.status !== "Ready" ? recent : (await registry.nodes.get(input.nodeId))!;
      await registry.nodes.update(node, (n) => (n.status === "Ready" ? undefined : { status: "Ready", lastError: undefined }), "service:onboard", "node.ready");
    },

    markFailed: async (input: { nodeId: string; code: string; message: string; removed: string[]; remaining: string[] }): Promise<void> => {
      const node = await registry.nodes.get(input.nodeId);
      if (!node) return;
      const message = `${input.message}${input.removed.length ? `; removed: ${input.removed.join(", ")}` : ""}${input.remaining.length ? `; NOT removed: ${input.remaining.join(", ")}` : ""}`;
      await registry.nodes.update(
        node,
        () => ({ status: "Failed", lastError: { code: input.code, message, at: now().toISOString() } }),
        "service:onboard",
        "node.failed",
      );
    },

    /**
     * What compensation must remove: everything recorded on the node, in creation order. Activities record an object
     * before the call that creates it, so this includes objects whose creating call failed or crashed half-way — the
     * saga's own list cannot know those. Removing an absent object is done, so over-approximating is safe.
     */
    recordedObjects: async (input: { nodeId: string }): Promise<CreatedObject[]> => {
      const node = await registry.nodes.get(input.nodeId);
      return (node?.createdObjects ?? []).map(parseObjectRef);
    },

    /** What the sweeper's compensation needs to reach the agent: the node context when the node has a mailbox. */
    compensationContext: async (input: { nodeId: string }): Promise<AgentReach> => {
      const node = await registry.nodes.get(input.nodeId);
      const pool = node && (await registry.pools.spec(node.pool));
      if (!node || !pool || !node.createdObjects.some((r) => r.startsWith("mailbox:"))) return { timing: timingOverrides(settings) };
      const context = nodeContextOf(node, pool, settings);
      return { context, timing: context.timing };
    },

    /** Marks the node Offboarding and tells the saga what it needs to reach the agent (if the node has a mailbox). */
    offboardBegin: async (input: { nodeId: string; reason: string; actor: string }): Promise<AgentReach & { hasMailbox: boolean }> => {
      const node = await registry.nodes.get(input.nodeId);
      if (!node) throw new Error(`node ${input.nodeId} is not in the registry`);
      if (node.status !== "Offboarding" && node.status !== "Offboarded") {
        await registry.nodes.update(
          node,
          () => ({ status: "Offboarding", lastError: { code: "Decommissioned", message: input.reason, at: now().toISOString() } }),
          input.actor,
          "node.offboarding",
        );
      }
      const pool = await registry.pools.spec(node.pool);
      const hasMailbox = node.createdObjects.some((r) => r.startsWith("mailbox:"));
      if (!pool || !hasMailbox) return { hasMailbox: false, timing: timingOverrides(settings) };
      const context = nodeContextOf(node, pool, settings);
      return { hasMailbox, context, timing: context.timing };
    },

    offboardFinish: async (input: { nodeId: string; actor: string; removed: string[]; remaining: string[] }): Promise<void> => {
      const node = (await registry.nodes.get(input.nodeId))!;
      await registry.nodes.update(
        node,
        () =>
          input.remaining.length === 0
            ? { status: "Offboarded" }
            : {
                status: "Offboarding",
                lastError: { code: "OffboardIncomplete", message: `NOT removed: ${input.remaining.join(", ")}`, at: now().toISOString() },
              },
        input.actor,
        input.remaining.length === 0 ? "node.offboarded" : "node.offboard-incomplete",
      );
    },
  };
}
