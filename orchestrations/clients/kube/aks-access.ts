/**
 * The service's way into an AKS cluster: the API server, its CA, and a token the service may use there.
 *
 * Clusters with local accounts: AKS's admin credential. Clusters with local accounts disabled (Entra ID only, the AKS
 * default for new secure clusters) refuse static credentials with 400; then the server and CA come from the user
 * credential (an exec/kubelogin kubeconfig) and the token is the service identity's own Entra token for the AKS
 * server application — the identity needs *Azure Kubernetes Service RBAC Cluster Admin* on the cluster (or a
 * Kubernetes RBAC binding for its object id).
 *
 * Access is reused per cluster for a few minutes: listClusterAdminCredential is an ARM POST and counts against the
 * write budget, and every Kubernetes activity needs access. Well inside the credential's lifetime (admin credentials:
 * 2 years by default; Entra tokens: an hour). A failure is not kept: the next call asks again.
 */
import type { TokenCredential } from "@azure/core-auth";
import { isRestError } from "@azure/core-rest-pipeline";
import type { ArmClients } from "../arm/arm-clients.js";
import { parseClusterId } from "../arm/resource-id.js";
import { KubeClient } from "./kube-client.js";
import { AKS_ENTRA_SERVER_APP_ID, EntraTokenRequiredError, kubeClusterFromKubeconfig, kubeTargetFromKubeconfig } from "./kube-target.js";

export interface KubeAccess {
  client: KubeClient;
  server: string;
  caPem: string;
}

export class AksAccessError extends Error {
  constructor(
    readonly code: "NoKubeconfig" | "NoEntraToken",
    message: string,
  ) {
    super(message);
    this.name = "AksAccessError";
  }
}

export interface AksAccessOptions {
  arm: ArmClients;
  /** The service's Entra identity, for clusters that accept only Entra tokens. */
  credential: TokenCredential;
  /** How long access to a cluster is reused; default 10 minutes. */
  ttlMs?: number;
  now?: () => number;
}

export class AksAccess {
  private readonly cache = new Map<string, { access: Promise<KubeAccess>; until: number }>();
  private readonly ttlMs: number;
  private readonly now: () => number;

  constructor(private readonly options: AksAccessOptions) {
    this.ttlMs = options.ttlMs ?? 10 * 60_000;
    this.now = options.now ?? Date.now;
  }

  /** A Kubernetes API client for a cluster, with the service's access to it, and the server and CA nodes will use. */
  get(clusterResourceId: string): Promise<KubeAccess> {
    const key = clusterResourceId.toLowerCase();
    const hit = this.cache.get(key);
    if (hit && hit.until > this.now()) return hit.access;
    const access = this.fetch(clusterResourceId);
    this.cache.set(key, { access, until: this.now() + this.ttlMs });
    access.catch(() => this.cache.delete(key));
    return access;
  }

  private async fetch(clusterResourceId: string): Promise<KubeAccess> {
    const { subscriptionId, resourceGroup, name } = parseClusterId(clusterResourceId);
    const clusters = this.options.arm.containerService(subscriptionId).managedClusters;
    let kubeconfig: Uint8Array | undefined;
    try {
      kubeconfig = (await clusters.listClusterAdminCredentials(resourceGroup, name)).kubeconfigs?.[0]?.value;
    } catch (error) {
      if (!(isRestError(error) && error.statusCode === 400)) throw error;
      return this.withEntraToken((await clusters.listClusterUserCredentials(resourceGroup, name)).kubeconfigs?.[0]?.value, clusterResourceId);
    }
    if (!kubeconfig) throw new AksAccessError("NoKubeconfig", `AKS returned no admin kubeconfig for ${clusterResourceId}`);
    const yaml = Buffer.from(kubeconfig).toString("utf8");
    try {
      const target = kubeTargetFromKubeconfig(yaml);
      return { client: new KubeClient(target), server: target.server, caPem: target.caPem };
    } catch (error) {
      // An Entra-integrated cluster may answer even the admin credential with an exec kubeconfig.
      if (error instanceof EntraTokenRequiredError) return this.withEntraToken(kubeconfig, clusterResourceId);
      throw error;
    }
  }

  private async withEntraToken(kubeconfig: Uint8Array | undefined, clusterResourceId: string): Promise<KubeAccess> {
    if (!kubeconfig) throw new AksAccessError("NoKubeconfig", `AKS returned no user kubeconfig for ${clusterResourceId}`);
    const cluster = kubeClusterFromKubeconfig(Buffer.from(kubeconfig).toString("utf8"));
    const token = await this.options.credential.getToken(`${AKS_ENTRA_SERVER_APP_ID}/.default`);
    if (!token) throw new AksAccessError("NoEntraToken", `no Entra token for the AKS server application (${AKS_ENTRA_SERVER_APP_ID})`);
    return { client: new KubeClient({ ...cluster, token: token.token }), server: cluster.server, caPem: cluster.caPem };
  }
}
