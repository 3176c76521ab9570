/**
 * The few parts of a rhea link that its typings leave out: the attach frame we answer with, and the sender's credit
 * bookkeeping. rhea is pinned (3.0.5), so these fields are stable for this emulator.
 */
import rhea, { type AmqpError, type link, type Sender } from "rhea";

interface LinkInternals {
  local: { attach: Record<string, unknown> };
  credit: number;
  delivery_count: number;
}

function internals(l: link): LinkInternals {
  return l as unknown as LinkInternals;
}

export interface AttachAnswer {
  source?: { address: string };
  target?: { address: string };
  maxMessageSize?: number;
}

/**
 * Fills in our attach before rhea writes it (rhea sends it after the `*_open` handler returns). Settle modes echo
 * the peer's: a receive-and-delete receiver asks for settled transfers, and rhea presettles only if we agree.
 */
export function answerAttach(l: link, answer: AttachAnswer): void {
  const attach = internals(l).local.attach;
  if (answer.source) l.set_source(answer.source);
  if (answer.target) l.set_target(answer.target);
  attach["snd_settle_mode"] = l.snd_settle_mode;
  attach["rcv_settle_mode"] = l.rcv_settle_mode;
  if (answer.maxMessageSize !== undefined) attach["max_message_size"] = answer.maxMessageSize;
}

/** Refuses a link the way the service does: attach with no terminus, then detach with the error. */
export function refuseLink(l: link, error: AmqpError): void {
  l.close(error);
}

/**
 * The delivery-count position up to which the peer has granted credit. rhea keeps `credit` relative to transfers it
 * has already written, so `credit + delivery_count` is the absolute limit however many sends are still queued.
 */
export function creditLimit(sender: Sender): number {
  const state = internals(sender);
  return state.credit + state.delivery_count;
}

interface OutcomeValue {
  described(): unknown;
}

/** rhea's delivery-outcome constructors (present at runtime, missing from its typings). */
export const outcomes = rhea.message as unknown as {
  accepted(): OutcomeValue;
  rejected(fields: { error?: AmqpError }): OutcomeValue;
  released(): OutcomeValue;
  modified(fields: { undeliverable_here?: boolean; delivery_failed?: boolean }): OutcomeValue;
};
