/**
 * Counts ARM's 429s (metric `flexnode.arm.throttles`). Added to every ARM client's pipeline after its retry policy,
 * so each throttled attempt is counted, including those the SDK retries by itself before the saga sees one.
 */
import type { PipelinePolicy } from "@azure/core-rest-pipeline";
import { recordArmThrottle } from "./metrics.js";

export const ARM_THROTTLE_POLICY = "flexnodeArmThrottles";

export function armThrottleCounter(): PipelinePolicy {
  return {
    name: ARM_THROTTLE_POLICY,
    sendRequest: async (request, next) => {
      const response = await next(request);
      if (response.status === 429) recordArmThrottle({ method: request.method, resourceType: resourceTypeOf(request.url) });
      return response;
    },
  };
}

/** `Microsoft.HybridCompute/machines` from a resource URL: a few values, where the URL itself would be one per node. */
export function resourceTypeOf(url: string): string {
  const segments = new URL(url).pathname.split("/").filter(Boolean);
  const at = segments.map((s) => s.toLowerCase()).lastIndexOf("providers");
  if (at < 0 || at + 2 >= segments.length) return "unknown";
  const types = segments.slice(at + 2).filter((_, i) => i % 2 === 0);
  return [segments[at + 1], ...types].join("/");
}
