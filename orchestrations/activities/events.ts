/**
 * The sagas' lifecycle events: one activity the saga calls at each transition (ready, failed, offboarded). The
 * saga passes its run and the transition's time (the orchestration's clock), so a retried or replayed call builds the
 * very same event, id included; the node's pool and host name come from the registry.
 */
import { lifecycleEvent, type LifecycleEventKind } from "../../contract/lifecycle-events.js";
import type { Services } from "../services.js";

export type EventsDeps = Pick<Services, "registry" | "events">;

export interface PublishInput {
  kind: Extract<LifecycleEventKind, "ready" | "failed" | "offboarded">;
  nodeId: string;
  run: string;
  at: string;
  code?: string;
  message?: string;
  remaining?: string[];
}

export function createEventActivities({ registry, events }: EventsDeps) {
  return {
    publishLifecycleEvent: async (input: PublishInput): Promise<void> => {
      const node = await registry.nodes.get(input.nodeId);
      if (!node) return;
      const common = { nodeId: node.nodeId, pool: node.pool, hostname: node.facts.hostname, run: input.run };
      const event =
        input.kind === "ready"
          ? lifecycleEvent("ready", { run: input.run, time: input.at, data: common })
          : input.kind === "failed"
            ? lifecycleEvent("failed", { run: input.run, time: input.at, data: { ...common, code: input.code ?? "Failed", message: input.message ?? "" } })
            : lifecycleEvent("offboarded", { run: input.run, time: input.at, data: { ...common, remaining: input.remaining ?? [] } });
      await events().publish([event]);
    },
  };
}
