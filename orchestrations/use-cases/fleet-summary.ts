/**
 * The fleet at a glance: nodes by pool and status, each pool's onboarding slots in use against its limit, and the
 * failures of the last hour and day by error code. Failures are counted from the nodes as they stand (a Failed node's
 * last error and its time), so a failed node that was retried since no longer counts.
 */
import { z } from "zod";
import { NodeStatus, type NodeRecord, type Pool } from "../clients/registry/model.js";
import type { Registry } from "../clients/registry/registry.js";

/** A bound on the work one request does; past it the summary says it is partial. */
const MAX_PAGES = 100;

const Counts = z.record(z.string(), z.int());
export const FleetSummary = z.object({
  at: z.iso.datetime(),
  totals: z.object({ nodes: z.int(), byStatus: Counts }),
  pools: z.array(
    z.object({
      pool: z.string(),
      nodes: z.int(),
      byStatus: Counts,
      inFlight: z.int(),
      waiting: z.int().describe("Nodes whose Azure side is prepared or being prepared, waiting for a slot before node-side work"),
      maxInFlight: z.int().describe("Nodes allowed in node-side work (onboarding or offboarding) at once"),
    }),
  ),
  failures: z.object({ lastHour: Counts.describe("By error code"), lastDay: Counts.describe("By error code") }),
  partial: z.boolean().describe("True when the fleet was too large to count in one request"),
});
export type FleetSummary = z.infer<typeof FleetSummary>;

export async function fleetSummary(deps: { registry: Registry; now: () => Date }): Promise<FleetSummary> {
  const now = deps.now();
  const [pools, nodes] = await Promise.all([
    all((c) => deps.registry.pools.list({ maxPageSize: 1000, continuationToken: c })),
    all((c) => deps.registry.nodes.list({ maxPageSize: 1000, continuationToken: c })),
  ]);
  const empty = () => Object.fromEntries(NodeStatus.options.map((s) => [s, 0])) as Record<string, number>;
  const byPool = new Map<string, { nodes: number; byStatus: Record<string, number> }>();
  const totals = { nodes: 0, byStatus: empty() };
  const lastHour: Record<string, number> = {};
  const lastDay: Record<string, number> = {};
  for (const n of nodes.items as NodeRecord[]) {
    const entry = byPool.get(n.pool) ?? { nodes: 0, byStatus: empty() };
    byPool.set(n.pool, entry);
    entry.nodes++;
    entry.byStatus[n.status] = (entry.byStatus[n.status] ?? 0) + 1;
    totals.nodes++;
    totals.byStatus[n.status] = (totals.byStatus[n.status] ?? 0) + 1;
    if (n.status === "Failed" && n.lastError) {
      const age = now.getTime() - Date.parse(n.lastError.at);
      if (age <= 86_400_000) lastDay[n.lastError.code] = (lastDay[n.lastError.code] ?? 0) + 1;
      if (age <= 3_600_000) lastHour[n.lastError.code] = (lastHour[n.lastError.code] ?? 0) + 1;
    }
  }
  return {
    at: now.toISOString(),
    totals,
    pools: (pools.items as Pool[]).map((p) => ({
      pool: p.name,
      nodes: byPool.get(p.name)?.nodes ?? 0,
      byStatus: byPool.get(p.name)?.byStatus ?? empty(),
      inFlight: p.inFlight,
      waiting: p.waiting,
      maxInFlight: p.maxInFlight,
    })),
    failures: { lastHour, lastDay },
    partial: pools.partial || nodes.partial,
  };
}

async function all<T>(
  next: (continuationToken: string | undefined) => Promise<{ items: T[]; continuationToken?: string }>,
): Promise<{ items: T[]; partial: boolean }> {
  const items: T[] = [];
  let continuation: string | undefined;
  for (let i = 0; i < MAX_PAGES; i++) {
    const page = await next(continuation);
    items.push(...page.items);
    continuation = page.continuationToken;
    if (!continuation) return { items, partial: false };
  }
  return { items, partial: true };
}
