/**
 * The node's steps, built per OS family from the node's record and the cluster (orchestrations/node-plan). History
 * keeps only step ids, timeouts and attempts: the plan itself (file contents, artifact URLs and digests) is rebuilt
 * wherever it is needed, here and by sendStep.
 */
import type { NodeRecord } from "../clients/registry/model.js";
import { catalogFromSettings } from "../node-plan/artifact-catalog.js";
import { buildNodePlan, type PlanStep } from "../node-plan/node-plan.js";
import type { Services } from "../services.js";
import { BOOTSTRAP_SECRET_REF } from "./created-objects.js";
import type { NodeContext } from "./node-context.js";
import { DEFAULT_DNS_SERVICE_IP } from "../use-cases/pool-cluster.js";

export type NodePlanDeps = Pick<Services, "registry" | "kube" | "settings">;

/** The cluster facts a plan depends on. */
export interface ClusterFacts {
  kubernetesVersion: string;
  apiServer: string;
  caPem: string;
  /** Absent in histories written before clusterInfo returned it: those clusters get AKS's default. */
  clusterDns?: string;
}

/** The node's plan facts: carried by the context since it carries them, read from the registry for an older history. */
export async function planNode(registry: Services["registry"], context: NodeContext): Promise<Pick<NodeRecord, "nodeId" | "labels" | "taints">> {
  if (context.labels && context.taints) return { nodeId: context.nodeId, labels: context.labels, taints: context.taints };
  return (await registry.nodes.get(context.nodeId))!;
}

export function planFor(
  context: NodeContext,
  node: Pick<NodeRecord, "nodeId" | "labels" | "taints">,
  cluster: ClusterFacts,
  catalog: string | undefined,
): PlanStep[] {
  return buildNodePlan({
    nodeName: node.nodeId,
    arch: context.arch,
    immutable: context.immutable,
    kubernetesVersion: cluster.kubernetesVersion,
    apiServer: cluster.apiServer,
    clusterDns: cluster.clusterDns ?? DEFAULT_DNS_SERVICE_IP,
    labels: node.labels,
    taints: node.taints,
    bootstrapSecretRef: BOOTSTRAP_SECRET_REF,
    clusterCaPem: cluster.caPem,
    catalog: catalogFromSettings(catalog),
  });
}

export function createNodePlanActivities({ registry, kube, settings }: NodePlanDeps) {
  return {
    planSteps: async (input: {
      context: NodeContext;
      kubernetesVersion: string;
      apiServer: string;
      clusterDns?: string;
    }): Promise<Pick<PlanStep, "stepId" | "timeoutMs" | "maxAttempts">[]> => {
      const node = await planNode(registry, input.context);
      const { caPem } = await kube(input.context.clusterResourceId);
      return planFor(input.context, node, { ...input, caPem }, settings.ARTIFACT_CATALOG).map(({ stepId, timeoutMs, maxAttempts }) => ({
        stepId,
        timeoutMs,
        maxAttempts,
      }));
    },
  };
}
