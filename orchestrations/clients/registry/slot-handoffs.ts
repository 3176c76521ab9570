/**
 * Who was handed a slot during a piece of work: a node that freed a slot while another waited for one passed it on in
 * the same transaction (in-flight.ts), and the waiting node's saga should hear of it now, not at its next look. The
 * registry notes each handoff here; the caller that can reach the sagas (an activity, with its Durable client) runs
 * its work inside `collectHandoffs` and tells each heir afterwards, also when the work then failed (the handoff is
 * written: a retry of the work would not make it again). Outside a collection a handoff is noted nowhere,
 * and the heir's saga finds its slot at its next look (it polls with growing waits as well).
 */
import { AsyncLocalStorage } from "node:async_hooks";

export interface SlotHandoff {
  pool: string;
  nodeId: string;
}

const collected = new AsyncLocalStorage<SlotHandoff[]>();

/** Runs `work`, adding to `into` the nodes handed a slot while it ran (whether it then succeeds or fails). */
export function collectHandoffs<T>(into: SlotHandoff[], work: () => Promise<T>): Promise<T> {
  return collected.run(into, work);
}

export function noteHandoff(handoff: SlotHandoff): void {
  collected.getStore()?.push(handoff);
}
