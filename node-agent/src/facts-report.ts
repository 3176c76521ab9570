/**
 * A machine's facts move after enrolment: an immutable OS updates itself (Flatcar, Fedora CoreOS, bootc swap the
 * whole image), DHCP hands out another address, memory is added. Each start of `run` gathers them again and, when
 * they differ from what the service last recorded, sends them (PUT /api/node/facts), so the fleet's inventory follows
 * the machine instead of describing it as it was on its first day.
 *
 * Best effort by design: the inventory is not worth a node that stops taking steps, so a failure is reported as an
 * event and the report is tried again on the next start (a drain-mode timer run is a start too).
 */
import { createHash } from "node:crypto";
import type { NodeFacts } from "../../contract/node-facts.js";
import type { EventSink } from "./agent-events.js";
import type { AgentStateStore } from "./agent-state.js";
import { gatherFacts, type SystemInfo } from "./facts.js";
import type { NodeApiClient } from "./node-api-client.js";

/** SHA-256 over the facts with their keys sorted and addresses in order, so the same machine digests the same. */
export function factsDigest(facts: NodeFacts): string {
  const canonical = { ...facts, addresses: [...facts.addresses].sort() };
  return createHash("sha256").update(JSON.stringify(canonical, sortedKeys)).digest("hex");
}

function sortedKeys(_key: string, value: unknown): unknown {
  if (!value || typeof value !== "object" || Array.isArray(value)) return value;
  return Object.fromEntries(Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

export interface FactsReportOptions {
  root: string;
  store: AgentStateStore;
  api: Pick<NodeApiClient, "reportFacts">;
  system?: SystemInfo;
  onEvent: EventSink;
}

/** What happened: `unchanged` sends nothing; `failed` is retried on the next start. */
export type FactsReportOutcome = "unchanged" | "reported" | "failed";

export async function reportChangedFacts(o: FactsReportOptions): Promise<FactsReportOutcome> {
  try {
    const { facts } = await gatherFacts({ root: o.root, ...(o.system ? { system: o.system } : {}) });
    const digest = factsDigest(facts);
    const state = await o.store.require();
    // The admin decides on the facts enrolment sent: the service takes none until then (409), so none are sent.
    if (state.factsDigest === digest || state.status === "AwaitingApproval") return "unchanged";
    await o.api.reportFacts(facts);
    await o.store.update((state) => ({ ...state, factsDigest: digest }));
    o.onEvent({ type: "facts-reported", hostname: facts.hostname, os: facts.osRelease.prettyName ?? facts.osRelease.id, kernel: facts.kernel });
    return "reported";
  } catch (error) {
    // Stopped with the run: the next start reports it.
    if (error instanceof Error && error.name === "AbortError") return "failed";
    // Also the 409 for facts that name another machine (a re-imaged disk keeping this state): the service keeps
    // what it had, and the operator sees why here.
    o.onEvent({ type: "error", where: "facts", message: error instanceof Error ? error.message : String(error) });
    return "failed";
  }
}
