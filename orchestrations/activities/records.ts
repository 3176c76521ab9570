/**
 * The registry side of the sagas: the node's status through onboarding and offboarding, the node context each saga
 * starts from, and the record of what was created for the node (`record`, used by every activity that creates or
 * removes something, *before* the call that creates it).
 */
import type { NodeRecord } from "../clients/registry/model.js";
import type { NodeChange } from "../clients/registry/nodes.js";
import { RegistryError, type Registry } from "../clients/registry/registry.js";
import type { Timing } from "../onboard/timing.js";
import type { Services } from "../services.js";
import { objectRef, parseObjectRef, type CreatedObject } from "./created-objects.js";
import { effectiveTiming, nodeContextOf, type NodeContext } from "./node-context.js";

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

/**
 * A status write guarded by `expect` (the statuses the calling saga owns): the updated node, or undefined when the
 * node is in another status — another saga's, whose write must stand.
 */
async function owned(write: () => Promise<NodeRecord>): Promise<NodeRecord | undefined> {
  try {
    return await write();
  } catch (error) {
    if (error instanceof RegistryError && error.code === "Conflict") return undefined;
    throw error;
  }
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

    /**
     * Onboarding → Ready; a repeat finds it Ready. Only the onboarding's own status is moved: a node decommissioned
     * meanwhile (its offboarding wrote Offboarding) is left alone, and the answer false fails the saga instead of
     * announcing a Ready node.
     */
    /**
     * Whether the node holds a pool slot, so its saga may go on to node-side work: false while it waits for one (see
     * clients/registry/in-flight.ts). `waited`: an earlier look of this run found it waiting; the wait's end is then
     * recorded as `at` (the saga's time: the sweeper measures its deadline from the saga's start on the same clock).
     */
    takeSlot: (input: { nodeId: string; pool: string; waited: boolean; at: string }): Promise<boolean> =>
      registry.nodes.takeSlot({ nodeId: input.nodeId, pool: input.pool }, { waited: input.waited, at: input.at }),

    markReady: async (input: { nodeId: string }): Promise<boolean> => {
      // The copy this process last wrote (usually reserve's or the last record's) saves a read; its ETag guards it, and
      // `expect` decides on a fresh read when it is not Onboarding.
      const recent = registry.nodes.recent(input.nodeId);
      const node = recent?.status === "Onboarding" ? recent : await registry.nodes.get(input.nodeId);
      if (!node) return false;
      const done = await owned(() =>
        registry.nodes.update(node, (n) => (n.status === "Ready" ? undefined : { status: "Ready", lastError: undefined }), "service:onboard", "node.ready", {
          expect: ["Onboarding", "Ready"],
        }),
      );
      return done !== undefined;
    },

    /**
     * A compensation that runs beside its stopped saga takes the node from the onboarding before it removes anything:
     * Durable's terminate does not stop an activity already running, so the saga's markReady may still land. Whichever
     * write comes first wins: a node already Ready keeps what it has (the cancel came too late), and a node claimed
     * here can no longer be marked Ready. True when the node is the compensation's (also on a repeat of this claim).
     */
    claimForCompensation: async (input: { nodeId: string; code: string; message: string }): Promise<boolean> => {
      const node = await registry.nodes.get(input.nodeId);
      if (!node) return false;
      const done = await owned(() =>
        registry.nodes.update(
          node,
          () => ({ status: "Failed", lastError: { code: input.code, message: input.message, at: now().toISOString() } }),
          "service:onboard",
          "node.compensating",
          { expect: ["Enrolling", "Onboarding"] },
        ),
      );
      if (done) return true;
      const again = await registry.nodes.get(input.nodeId);
      return again?.status === "Failed" && again.lastError?.code === input.code;
    },

    /**
     * Enrolling or Onboarding → Failed, and false (nothing written) from any other status: a compensation that ends
     * after its node was decommissioned (Offboarding, Offboarded) or started over must not leave it Failed, where a
     * retry would onboard a decommissioned node. The saga announces the failure only when this marked it. A node its
     * compensation claimed first (`claimed`) is Failed already: this records the outcome on it.
     */
    markFailed: async (input: {
      nodeId: string;
      code: string;
      message: string;
      removed: string[];
      remaining: string[];
      /** The compensation claimed the node first (claimForCompensation): it is Failed already, with this code. */
      claimed?: boolean;
    }): Promise<boolean> => {
      const node = await registry.nodes.get(input.nodeId);
      if (!node) return false;
      const message = `${input.message}${input.removed.length ? `; removed: ${input.removed.join(", ")}` : ""}${input.remaining.length ? `; NOT removed: ${input.remaining.join(", ")}` : ""}`;
      const done = await owned(() =>
        registry.nodes.update(
          node,
          () => ({ status: "Failed", lastError: { code: input.code, message, at: now().toISOString() } }),
          "service:onboard",
          "node.failed",
          { expect: input.claimed ? ["Enrolling", "Onboarding", "Failed"] : ["Enrolling", "Onboarding"] },
        ),
      );
      if (done) return true;
      // A repeat of this very mark (the activity retried after its write) finds the node Failed with this error.
      const again = await registry.nodes.get(input.nodeId);
      return again?.status === "Failed" && again.lastError?.code === input.code && again.lastError.message === message;
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
      if (!node || !pool || !node.createdObjects.some((r) => r.startsWith("mailbox:"))) return { timing: effectiveTiming(settings) };
      const context = nodeContextOf(node, pool, settings);
      return { context, timing: context.timing };
    },

    /** Marks the node Offboarding and tells the saga what it needs to reach the agent (if the node has a mailbox). */
    offboardBegin: async (input: { nodeId: string; reason: string; actor: string }): Promise<AgentReach & { hasMailbox: boolean }> => {
      const node = await registry.nodes.get(input.nodeId);
      if (!node) throw new Error(`node ${input.nodeId} is not in the registry`);
      // Decided on the node as written (the change is applied again on an ETag conflict): a repeat, or an offboarding
      // started over, finds it Offboarding or Offboarded and writes nothing.
      const begun = await registry.nodes.update(
        node,
        (n) =>
          n.status === "Offboarding" || n.status === "Offboarded"
            ? undefined
            : { status: "Offboarding", lastError: { code: "Decommissioned", message: input.reason, at: now().toISOString() } },
        input.actor,
        "node.offboarding",
      );
      const pool = await registry.pools.spec(begun.pool);
      const hasMailbox = begun.createdObjects.some((r) => r.startsWith("mailbox:"));
      if (!pool || !hasMailbox) return { hasMailbox: false, timing: effectiveTiming(settings) };
      const context = nodeContextOf(begun, pool, settings);
      return { hasMailbox, context, timing: context.timing };
    },

    /**
     * Offboarding → Offboarded (or Offboarding with what was not removed); a repeat finds it Offboarded. From any other
     * status nothing is written and the answer is false: the node is another saga's now.
     */
    offboardFinish: async (input: { nodeId: string; actor: string; removed: string[]; remaining: string[] }): Promise<boolean> => {
      const node = await registry.nodes.get(input.nodeId);
      if (!node) return false;
      const done = await owned(() =>
        registry.nodes.update(
          node,
          (n) =>
            input.remaining.length === 0
              ? n.status === "Offboarded"
                ? undefined
                : { status: "Offboarded" }
              : {
                  status: "Offboarding",
                  lastError: { code: "OffboardIncomplete", message: `NOT removed: ${input.remaining.join(", ")}`, at: now().toISOString() },
                },
          input.actor,
          input.remaining.length === 0 ? "node.offboarded" : "node.offboard-incomplete",
          { expect: input.remaining.length === 0 ? ["Offboarding", "Offboarded"] : ["Offboarding"] },
        ),
      );
      return done !== undefined;
    },
  };
}
