/**
 * The emulated Azure estate the sandbox starts with: one subscription, a resource group holding an AKS cluster, one
 * for Arc machines, the service's own identity, and the demo pool a newcomer's nodes join. Nothing here exists in
 * Azure; the ids only have the right shapes so the real SDK clients and the service's validation accept them.
 */
import { BUILT_IN_ROLES } from "../arm-emulator/index.js";

export const SUBSCRIPTION = "00000000-0000-4000-8000-0000000000c1";
export const CLUSTER_RG = "rg-sandbox-aks";
export const ARC_RG = "rg-sandbox-arc";
export const CLUSTER_NAME = "aks-sandbox";
export const LOCATION = "westeurope";
export const KUBERNETES_VERSION = "1.31.2";
export const CLUSTER_ID = `/subscriptions/${SUBSCRIPTION}/resourceGroups/${CLUSTER_RG}/providers/Microsoft.ContainerService/managedClusters/${CLUSTER_NAME}`;
export const ARC_RG_ID = `/subscriptions/${SUBSCRIPTION}/resourceGroups/${ARC_RG}`;
/** Object id of the service's (emulated) managed identity: ARM calls are made as it, Event Grid events it causes are its own. */
export const SERVICE_PRINCIPAL_ID = "5e1f0000-0000-4000-8000-0000000000c1";

export const DEMO_POOL = "demo";

/** The demo pool: both grant scopes a pool can use, a label and enough in-flight slots for a sandbox fleet. */
export function demoPoolBody(maxInFlight: number): Record<string, unknown> {
  return {
    name: DEMO_POOL,
    clusterResourceId: CLUSTER_ID,
    arc: { resourceGroupId: ARC_RG_ID, location: LOCATION, tags: { env: "sandbox" } },
    nodeLabels: { "flexnode.dev/sandbox": "true" },
    roleGrants: [
      { roleDefinitionId: BUILT_IN_ROLES["Azure Kubernetes Service Cluster User Role"], scope: "cluster" },
      { roleDefinitionId: BUILT_IN_ROLES.Reader, scope: "arcResourceGroup" },
    ],
    maxInFlight,
  };
}
