/**
 * Waking the onboarding sagas of nodes that may now take a pool slot: one was handed to them (an activity freed it),
 * or the pool's limit was raised. Best effort: each saga also looks on its own (timing.slotPoll), and a node that is
 * offboarding, or whose saga is gone, has no onboarding waiting to hear it.
 */
import type { InvocationContext } from "@azure/functions";
import type { DurableClient } from "durable-functions";
import type { SlotHandoff } from "../orchestrations/clients/registry/slot-handoffs.js";
import { SLOT_HANDED_EVENT } from "../orchestrations/onboard/onboard-node.js";

/** Raises at most this many events at once. */
const AT_ONCE = 16;

export async function wakeSlotWaiters(client: DurableClient, context: InvocationContext, nodes: readonly SlotHandoff[]): Promise<void> {
  const wake = async (node: SlotHandoff) => {
    try {
      // The onboarding saga's instance id is the node id.
      await client.raiseEvent(node.nodeId, SLOT_HANDED_EVENT, { pool: node.pool });
    } catch {
      // Not the client's message: it may carry the extension's URL, and with it a key.
      context.warn(`could not wake the saga of ${node.nodeId} (pool ${node.pool}); it will find its slot at its next look`);
    }
  };
  for (let i = 0; i < nodes.length; i += AT_ONCE) await Promise.all(nodes.slice(i, i + AT_ONCE).map(wake));
}
