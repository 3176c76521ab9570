/**
 * What a pool needs of its AKS cluster, read from the managed cluster (networkProfile).
 *
 * Pod networking: a node outside the cluster's VNet cannot take part in kubenet, Azure CNI or Azure CNI Overlay — their
 * pod routes and addresses live in Azure route tables and the VNet's SDN, which never reach a machine in another
 * network. Only a cluster created without a network plugin (`networkPlugin: none`, "bring your own CNI") lets an overlay
 * CNI installed in the cluster (a DaemonSet that writes each node's CNI config) carry pods to and from flex nodes; the
 * upstream AKS Flex Node E2E runs on such a cluster. So a pool refuses any other plugin, at creation and again before
 * each onboarding writes anything to a node (clusterInfo), since AKS can migrate a cluster's plugin later.
 *
 * Cluster DNS: the kubelet's clusterDNS is the cluster's own DNS service IP, which AKS lets a cluster choose.
 */
import type { ManagedCluster } from "@azure/arm-containerservice";
import type { ArmClients } from "../clients/arm/arm-clients.js";
import { parseClusterId } from "../clients/arm/resource-id.js";

/** AKS's DNS service IP when a cluster sets none (the tenth address of its default service CIDR 10.0.0.0/16). */
export const DEFAULT_DNS_SERVICE_IP = "10.0.0.10";

/** The only network plugin whose pod network can reach a node outside the cluster's VNet (see above). */
export const REQUIRED_NETWORK_PLUGIN = "none";

export interface NetworkPluginRefusal {
  networkPlugin: string | null;
  networkPluginMode: string | null;
  requiredNetworkPlugin: typeof REQUIRED_NETWORK_PLUGIN;
  detail: string;
}

export const clusterDnsOf = (cluster: Pick<ManagedCluster, "networkProfile">): string => cluster.networkProfile?.dnsServiceIP || DEFAULT_DNS_SERVICE_IP;

/** Why the cluster's pod network cannot include flex nodes, or undefined when it can. */
export function networkPluginRefusal(cluster: Pick<ManagedCluster, "networkProfile">): NetworkPluginRefusal | undefined {
  const plugin = cluster.networkProfile?.networkPlugin;
  if (plugin === REQUIRED_NETWORK_PLUGIN) return undefined;
  const mode = cluster.networkProfile?.networkPluginMode;
  const named = plugin === undefined ? "no networkPlugin" : `networkPlugin '${plugin}'${mode ? ` (networkPluginMode '${mode}')` : ""}`;
  return {
    networkPlugin: plugin ?? null,
    networkPluginMode: mode ?? null,
    requiredNetworkPlugin: REQUIRED_NETWORK_PLUGIN,
    detail:
      `the cluster reports ${named}: its pod network is carried by Azure routing that does not reach machines outside the cluster's VNet, ` +
      `so flex nodes would get no working pod network. Use a cluster created with networkPlugin 'none' (az aks create --network-plugin none) ` +
      `and an overlay CNI installed in it, whose DaemonSet configures each node's CNI.`,
  };
}

/**
 * The refusal for a pool on this cluster, or undefined. A cluster the service cannot read now (no role on it yet, ARM
 * unreachable) is not refused: creating a pool never depended on reaching ARM, and every onboarding reads the cluster
 * and checks again before it writes anything to a node.
 */
export async function poolClusterRefusal(arm: ArmClients, clusterResourceId: string): Promise<NetworkPluginRefusal | undefined> {
  const { subscriptionId, resourceGroup, name } = parseClusterId(clusterResourceId);
  let cluster: ManagedCluster;
  try {
    cluster = await arm.containerService(subscriptionId).managedClusters.get(resourceGroup, name);
  } catch {
    return undefined;
  }
  return networkPluginRefusal(cluster);
}
