/**
 * The node's way into the cluster: the cluster's server and version, the pool's bootstrap RBAC, a single-use
 * bootstrap token, the Node object the kubelet will register, and whether it is Ready.
 */
import { parseClusterId } from "../clients/arm/resource-id.js";
import { BOOTSTRAP_TOKEN_NAMESPACE, bootstrapKubeconfig, bootstrapTokenSecret, newBootstrapToken, poolBootstrapRbac } from "../clients/kube/index.js";
import type { Services } from "../services.js";
import { clusterDnsOf, networkPluginRefusal } from "../use-cases/pool-cluster.js";
import { BOOTSTRAP_SECRET_REF, type CreatedObject } from "./created-objects.js";
import type { NodeContext } from "./node-context.js";
import { record } from "./records.js";

export type KubeDeps = Pick<Services, "arm" | "kube" | "secrets" | "registry" | "now">;

const TOKEN_REF = `${BOOTSTRAP_SECRET_REF}.token`;

/** Offers the node its bootstrap kubeconfig for this token, unless an offer is waiting already. */
async function offerBootstrapKubeconfig(
  { kube, secrets }: Pick<KubeDeps, "kube" | "secrets">,
  c: { nodeId: string; clusterResourceId: string; token: string; expiresAt: Date },
): Promise<void> {
  const { server, caPem } = await kube(c.clusterResourceId);
  const kubeconfig = bootstrapKubeconfig({ server, caPem, token: c.token, clusterName: parseClusterId(c.clusterResourceId).name });
  await secrets().putIfAbsent(c.nodeId, BOOTSTRAP_SECRET_REF, kubeconfig, c.expiresAt, { offered: true });
}

/**
 * Offers the bootstrap kubeconfig again to a node that asks for it in a later attempt of its fetch step. The node's
 * take deletes the offer, so a take whose answer never reached the node (a cut connection, an agent killed before it
 * wrote the file) would otherwise leave every retry without it, and the onboarding would fail on a lost response. The
 * token is the same one, kept by the service until the saga ends; each offer is still taken at most once, and only by
 * the node's signed request. Nothing is offered once the saga has removed the token (finalize, compensation).
 */
export async function reofferBootstrapKubeconfig(deps: Pick<KubeDeps, "kube" | "secrets">, context: NodeContext): Promise<void> {
  const token = await deps.secrets().peekEntry(context.nodeId, TOKEN_REF);
  if (!token) return;
  await offerBootstrapKubeconfig(deps, {
    nodeId: context.nodeId,
    clusterResourceId: context.clusterResourceId,
    token: token.value,
    expiresAt: token.expiresAt,
  });
}

/** The cluster facts the saga keeps in its history and hands to the plan. */
export interface ClusterInfo {
  apiServer: string;
  kubernetesVersion: string;
  /** The cluster's DNS service IP (networkProfile.dnsServiceIP), the kubelet's clusterDNS. */
  clusterDns: string;
}

/** A run of this many taken ids means something other than chance (36^6 ids per cluster): fail, and say so. */
const MAX_TOKEN_ID_DRAWS = 5;

export interface KubeActivityOptions {
  /** Draws a bootstrap token `<id>.<secret>`; crypto-random by default (tests force an id another token holds). */
  mintToken?: () => string;
}

export function createKubeActivities({ arm, kube, secrets, registry, now }: KubeDeps, options: KubeActivityOptions = {}) {
  const mintToken = options.mintToken ?? (() => newBootstrapToken().join("."));
  return {
    /**
     * What the plan needs from the managed cluster. The cluster's network plugin is checked again here, not only at
     * pool creation: a pool created before that check, or a cluster migrated to another plugin since, must not get a
     * node it cannot give a pod network.
     */
    clusterInfo: async (input: { clusterResourceId: string }): Promise<ClusterInfo> => {
      const { subscriptionId, resourceGroup, name } = parseClusterId(input.clusterResourceId);
      const cluster = await arm().containerService(subscriptionId).managedClusters.get(resourceGroup, name);
      const refusal = networkPluginRefusal(cluster);
      if (refusal) throw new Error(`cluster ${input.clusterResourceId}: ${refusal.detail}`);
      const { server } = await kube(input.clusterResourceId);
      return {
        apiServer: server,
        kubernetesVersion: cluster.currentKubernetesVersion ?? cluster.kubernetesVersion ?? "1.31.2",
        clusterDns: clusterDnsOf(cluster),
      };
    },

    /** Per-pool RBAC: the pool's bootstrap group may create CSRs and get node-client CSRs approved, nothing more. */
    ensurePoolRbac: async (input: { clusterResourceId: string; pool: string }): Promise<void> => {
      const { client } = await kube(input.clusterResourceId);
      for (const binding of poolBootstrapRbac(input.pool).bindings) await client.applyClusterRoleBinding(binding);
    },

    /**
     * A single-use bootstrap token for this saga run. Its id is random over [a-z0-9]{6}, as kubeadm's: ids are
     * per cluster, and a fleet's thousands of live tokens would collide in a derived id's smaller space. The token is
     * stored sealed *before* its Secret exists, so a retried activity reuses it instead of minting a second one. A
     * Secret already under the id is this token's when it holds this token's secret (a retry); otherwise the id is
     * taken, and the activity draws another. The node's kubeconfig is stored once the Secret is known to be its own.
     */
    issueBootstrapToken: async (input: { context: NodeContext; ttlMs: number }): Promise<CreatedObject[]> => {
      const { nodeId, pool, clusterResourceId } = input.context;
      const { client } = await kube(clusterResourceId);
      const expiresAt = new Date(now().getTime() + input.ttlMs);
      const secretObj: CreatedObject = { kind: "oneTimeSecret", id: BOOTSTRAP_SECRET_REF };
      // The raw token is the service's own (a retry reuses it); only the kubeconfig the plan fetches is offered.
      let token = await secrets().putIfAbsent(nodeId, TOKEN_REF, mintToken(), expiresAt, { offered: false });
      for (let draw = 1; ; draw++) {
        const { secret } = bootstrapTokenSecret({ pool, nodeId, expiresAt, token });
        const tokenObj: CreatedObject = { kind: "bootstrapToken", id: secret.name, cluster: clusterResourceId };
        await record(registry, nodeId, [secretObj, tokenObj], "add");
        if ((await client.createSecret(BOOTSTRAP_TOKEN_NAMESPACE, secret)) === "exists") {
          const live = await client.getSecret(BOOTSTRAP_TOKEN_NAMESPACE, secret.name);
          if (live?.data["token-secret"] !== secret.stringData["token-secret"]) {
            if (draw >= MAX_TOKEN_ID_DRAWS) throw new Error(`bootstrap token Secrets for node ${nodeId}: ${draw} tries, each id taken in the cluster`);
            // Gone again since the create: the id is free, and the same token is tried once more. Otherwise it is
            // another token's: forget the name (removal would leave that Secret alone anyway) and draw again.
            if (live !== undefined) {
              await record(registry, nodeId, tokenObj, "remove");
              token = await secrets().replace(nodeId, TOKEN_REF, token, mintToken(), expiresAt, { offered: false });
            }
            continue;
          }
        }
        await offerBootstrapKubeconfig({ kube, secrets }, { nodeId, clusterResourceId, token, expiresAt });
        return [secretObj, tokenObj];
      }
    },

    /** Records, before the kubelet can start, that a Node object may appear in the cluster under the node's name. */
    expectKubeNode: async (input: { nodeId: string; cluster: string }): Promise<CreatedObject> => {
      const obj: CreatedObject = { kind: "kubeNode", id: input.nodeId, cluster: input.cluster };
      await record(registry, input.nodeId, obj, "add");
      return obj;
    },

    checkNodeReady: async (input: { clusterResourceId: string; nodeName: string }): Promise<boolean> => {
      const { client } = await kube(input.clusterResourceId);
      return (await client.getNode(input.nodeName))?.ready ?? false;
    },
  };
}
