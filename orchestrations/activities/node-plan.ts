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

export type NodePlanDeps = Pick<Services, "registry" | "kube" | "settings">;

/** The cluster facts a plan depends on. */
export interface ClusterFacts {
  kubernetesVersion: string;
  apiServer: string;
  caPem: string;
}

export function planFor(context: NodeContext, node: NodeRecord, cluster: ClusterFacts, catalog: string | undefined): PlanStep[] {
  return buildNodePlan({
    nodeName: node.nodeId,
    arch: context.arch,
    immutable: context.immutable,
    kubernetesVersion: cluster.kubernetesVersion,
    apiServer: cluster.apiServer,
    clusterDns: "10.0.0.10",
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
    }): Promise<Pick<PlanStep, "stepId" | "timeoutMs" | "maxAttempts">[]> => {
      const node = (await registry.nodes.get(input.context.nodeId))!;
      const { caPem } = await kube(input.context.clusterResourceId);
      return planFor(input.context, node, { ...input, caPem }, settings.ARTIFACT_CATALOG).map(({ stepId, timeoutMs, maxAttempts }) => ({
        stepId,
        timeoutMs,
        maxAttempts,
      }));
    },
  };
}
