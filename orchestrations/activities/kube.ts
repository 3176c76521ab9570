/**
 * The node's way into the cluster: the cluster's server and version, the pool's bootstrap RBAC, a single-use
 * bootstrap token, the Node object the kubelet will register, and whether it is Ready.
 */
import { createHash, randomBytes } from "node:crypto";
import { parseClusterId } from "../clients/arm/resource-id.js";
import { bootstrapKubeconfig, bootstrapTokenSecret, poolBootstrapRbac } from "../clients/kube/index.js";
import type { Services } from "../services.js";
import { BOOTSTRAP_SECRET_REF, type CreatedObject } from "./created-objects.js";
import type { NodeContext } from "./node-context.js";
import { record } from "./records.js";

export type KubeDeps = Pick<Services, "arm" | "kube" | "secrets" | "registry" | "now">;

export function createKubeActivities({ arm, kube, secrets, registry, now }: KubeDeps) {
  return {
    clusterInfo: async (input: { clusterResourceId: string }): Promise<{ apiServer: string; kubernetesVersion: string }> => {
      const { subscriptionId, resourceGroup, name } = parseClusterId(input.clusterResourceId);
      const cluster = await arm().containerService(subscriptionId).managedClusters.get(resourceGroup, name);
      const { server } = await kube(input.clusterResourceId);
      return { apiServer: server, kubernetesVersion: cluster.currentKubernetesVersion ?? cluster.kubernetesVersion ?? "1.31.2" };
    },

    /** Per-pool RBAC: the pool's bootstrap group may create CSRs and get node-client CSRs approved, nothing more. */
    ensurePoolRbac: async (input: { clusterResourceId: string; pool: string }): Promise<void> => {
      const { client } = await kube(input.clusterResourceId);
      for (const binding of poolBootstrapRbac(input.pool).bindings) await client.applyClusterRoleBinding(binding);
    },

    /**
     * A single-use bootstrap token for this saga run: its id derives from the run (so a retry finds the same Secret),
     * its secret is random and stored sealed as the node's one-time secret *before* the Secret exists, so a retried
     * activity reuses it instead of minting a second token.
     */
    issueBootstrapToken: async (input: { context: NodeContext; runId: string; ttlMs: number }): Promise<CreatedObject[]> => {
      const { nodeId, pool, clusterResourceId } = input.context;
      const { client, server, caPem } = await kube(clusterResourceId);
      const expiresAt = new Date(now().getTime() + input.ttlMs);
      const tokenId = createHash("sha256")
        .update(`${nodeId}/${input.runId}`)
        .digest("hex")
        .replace(/[^a-z0-9]/g, "")
        .slice(0, 6);
      const fresh = `${tokenId}.${randomBytes(12).toString("hex").slice(0, 16)}`;
      // The raw token is the service's own (a retry reuses it); only the kubeconfig the plan fetches is offered.
      const token = await secrets().putIfAbsent(nodeId, `${BOOTSTRAP_SECRET_REF}.token`, fresh, expiresAt, { offered: false });
      const secretObj: CreatedObject = { kind: "oneTimeSecret", id: BOOTSTRAP_SECRET_REF };
      const tokenObj: CreatedObject = { kind: "bootstrapToken", id: `bootstrap-token-${token.split(".")[0]}`, cluster: clusterResourceId };
      await record(registry, nodeId, [secretObj, tokenObj], "add");
      const kubeconfig = bootstrapKubeconfig({ server, caPem, token, clusterName: parseClusterId(clusterResourceId).name });
      await secrets().putIfAbsent(nodeId, BOOTSTRAP_SECRET_REF, kubeconfig, expiresAt, { offered: true });
      const { secret } = bootstrapTokenSecret({ pool, nodeId, expiresAt, token });
      await client.createSecret("kube-system", secret);
      return [secretObj, tokenObj];
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
