/** Labels the service puts on what it creates in a cluster, so it can find (and only ever delete) its own objects. */

export const MANAGED_BY_LABEL = "app.kubernetes.io/managed-by";
export const MANAGED_BY_VALUE = "flexnode-onboarding";
export const NODE_ID_LABEL = "flexnode.dev/node-id";
export const POOL_LABEL = "flexnode.dev/pool";
/** The label the kubelet registers its Node with (node-plan.ts puts it in --node-labels): the node's id. */
export const KUBELET_NODE_LABEL = "flexnode.dev/node";

/** Label selector for the service's bootstrap-token Secrets of one node (e.g. to clean up after a retried activity). */
export function nodeSecretsSelector(nodeId: string): string {
  return `${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE},${NODE_ID_LABEL}=${nodeId}`;
}
