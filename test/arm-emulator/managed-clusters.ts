/**
 * Microsoft.ContainerService/managedClusters, read side only: clusters are fixtures a test adds (they stand for an
 * existing AKS cluster, perhaps backed by a Kubernetes API emulator whose URL and CA are passed in), served by GET and
 * the three credential actions. Static credentials are refused when local accounts are disabled, as AKS does.
 */
import { ArmError, armErrors } from "./arm-error.js";
import { AKS_AAD_CLIENT_ID, AKS_AAD_SERVER_ID, renderKubeconfig, type KubeconfigUser } from "./kubeconfig.js";
import { idKey } from "./resource-id.js";
import type { RequestContext, Route } from "./router.js";
import type { Tenancy } from "./tenancy.js";
import type { HandlerResult } from "./wire.js";

export const CLUSTER_TYPE = "Microsoft.ContainerService/managedClusters";

export interface AadProfile {
  managed?: boolean;
  enableAzureRBAC?: boolean;
  tenantID?: string;
  adminGroupObjectIDs?: string[];
}

export interface ClusterFixture {
  subscriptionId: string;
  resourceGroup: string;
  name: string;
  location?: string;
  /** Defaults to `<dnsPrefix>-<random>.hcp.<location>.azmk8s.io`. */
  fqdn?: string;
  /** The `server` written into kubeconfigs; defaults to `https://<fqdn>:443`. Point it at a Kubernetes emulator. */
  serverUrl?: string;
  /** Cluster CA certificate (PEM) written base64-encoded into kubeconfigs as certificate-authority-data. */
  caPem?: string;
  disableLocalAccounts?: boolean;
  aadProfile?: AadProfile;
  kubernetesVersion?: string;
  dnsPrefix?: string;
  /**
   * The static (admin, user, monitoring) kubeconfig user: client certificate, key and token (default, the shape of
   * clusters with local accounts), or certificate and key only.
   */
  staticCredential?: "token+certificate" | "certificate";
  /** The cluster's network (networkProfile); see ClusterNetwork for the defaults. */
  network?: Partial<ClusterNetwork>;
}

/**
 * networkProfile fields a GET returns. Default: no network plugin ("bring your own CNI", what flex-node pools need),
 * AKS's default service CIDR and DNS service IP. Kubenet and overlay clusters also report a pod CIDR.
 */
export interface ClusterNetwork {
  networkPlugin: "none" | "kubenet" | "azure";
  networkPluginMode?: "overlay";
  serviceCidr: string;
  dnsServiceIP: string;
  podCidr?: string;
}

const DEFAULT_NETWORK: ClusterNetwork = { networkPlugin: "none", serviceCidr: "10.0.0.0/16", dnsServiceIP: "10.0.0.10" };

export interface ClusterRecord {
  id: string;
  subscriptionId: string;
  resourceGroup: string;
  name: string;
  location: string;
  dnsPrefix: string;
  fqdn: string;
  serverUrl: string;
  caPem: string;
  disableLocalAccounts: boolean;
  aadProfile: AadProfile | undefined;
  kubernetesVersion: string;
  userToken: string;
  adminToken: string;
  monitoringToken: string;
  staticCredential: "token+certificate" | "certificate";
  network: ClusterNetwork;
}

/** Not a parseable certificate: tests that need a real CA pass the Kubernetes emulator's `caPem`. */
const PLACEHOLDER_CA_PEM = [
  "-----BEGIN CERTIFICATE-----",
  Buffer.from("arm-emulator placeholder cluster CA").toString("base64"),
  "-----END CERTIFICATE-----",
  "",
].join("\n");

/** Placeholders of the right shape: the Kubernetes emulator does not authenticate client certificates. */
const PLACEHOLDER_CLIENT_CERT_PEM = PLACEHOLDER_CA_PEM.replace("cluster CA", "client certificate");
const PLACEHOLDER_CLIENT_KEY_PEM = [
  "-----BEGIN RSA PRIVATE KEY-----",
  Buffer.from("arm-emulator placeholder key").toString("base64"),
  "-----END RSA PRIVATE KEY-----",
  "",
].join("\n");

const STATIC_CREDENTIALS_REFUSED = "Getting static credential is not allowed because this cluster is set to disable local accounts.";

export class ManagedClusters {
  private readonly byId = new Map<string, ClusterRecord>();

  constructor(
    private readonly tenancy: Tenancy,
    private readonly newId: () => string,
    private readonly tenantId: string,
  ) {}

  add(fixture: ClusterFixture): ClusterRecord {
    const group = this.tenancy.addResourceGroup(fixture.subscriptionId, fixture.resourceGroup, fixture.location);
    const location = fixture.location ?? group.location;
    const dnsPrefix = fixture.dnsPrefix ?? fixture.name;
    const fqdn = fixture.fqdn ?? `${dnsPrefix}-${this.newId().slice(0, 8)}.hcp.${location}.azmk8s.io`;
    const record: ClusterRecord = {
      // AKS returns `resourcegroups` lower-case in cluster ids (seen in recorded traffic).
      id: `/subscriptions/${group.subscriptionId}/resourcegroups/${group.name}/providers/Microsoft.ContainerService/managedClusters/${fixture.name}`,
      subscriptionId: group.subscriptionId,
      resourceGroup: group.name,
      name: fixture.name,
      location,
      dnsPrefix,
      fqdn,
      serverUrl: fixture.serverUrl ?? `https://${fqdn}:443`,
      caPem: fixture.caPem ?? PLACEHOLDER_CA_PEM,
      disableLocalAccounts: fixture.disableLocalAccounts ?? false,
      aadProfile: fixture.aadProfile,
      kubernetesVersion: fixture.kubernetesVersion ?? "1.32.6",
      userToken: this.token(),
      adminToken: this.token(),
      monitoringToken: this.token(),
      staticCredential: fixture.staticCredential ?? "token+certificate",
      network: { ...DEFAULT_NETWORK, ...fixture.network },
    };
    this.byId.set(idKey(record.id), record);
    return record;
  }

  list(): ClusterRecord[] {
    return [...this.byId.values()];
  }

  routes(): Route[] {
    const base = String.raw`^\/subscriptions\/(?<sub>[^/]+)\/resourceGroups\/(?<rg>[^/]+)\/providers\/Microsoft\.ContainerService\/managedClusters\/(?<name>[^/]+)`;
    const action = (a: string) => new RegExp(`${base}\\/${a}$`, "i");
    return [
      { name: "managedClusters.get", method: "GET", pattern: new RegExp(`${base}$`, "i"), handle: (ctx) => this.get(ctx) },
      {
        name: "managedClusters.listClusterUserCredential",
        method: "POST",
        pattern: action("listClusterUserCredential"),
        handle: (ctx) => this.credentials(ctx, "user"),
      },
      {
        name: "managedClusters.listClusterAdminCredential",
        method: "POST",
        pattern: action("listClusterAdminCredential"),
        handle: (ctx) => this.credentials(ctx, "admin"),
      },
      {
        name: "managedClusters.listClusterMonitoringUserCredential",
        method: "POST",
        pattern: action("listClusterMonitoringUserCredential"),
        handle: (ctx) => this.credentials(ctx, "monitoring"),
      },
    ];
  }

  private get(ctx: RequestContext): HandlerResult {
    return { status: 200, body: this.render(this.require(ctx)) };
  }

  private credentials(ctx: RequestContext, kind: "user" | "admin" | "monitoring"): HandlerResult {
    const c = this.require(ctx);
    const aadUser = kind === "user" && c.aadProfile !== undefined;
    if (!aadUser && c.disableLocalAccounts) throw new ArmError(400, "BadRequest", STATIC_CREDENTIALS_REFUSED);
    const prefix = { user: "clusterUser", admin: "clusterAdmin", monitoring: "clusterMonitoringUser" }[kind];
    const userName = `${prefix}_${c.resourceGroup}_${c.name}`;
    const user: KubeconfigUser = aadUser
      ? { kind: "exec", name: userName, tenantId: c.aadProfile?.tenantID ?? this.tenantId, serverId: AKS_AAD_SERVER_ID, clientId: AKS_AAD_CLIENT_ID }
      : {
          kind: "static",
          name: userName,
          token: c.staticCredential === "certificate" ? undefined : kind === "admin" ? c.adminToken : kind === "user" ? c.userToken : c.monitoringToken,
          clientCertificatePem: PLACEHOLDER_CLIENT_CERT_PEM,
          clientKeyPem: PLACEHOLDER_CLIENT_KEY_PEM,
        };
    const yaml = renderKubeconfig({
      clusterName: c.name,
      contextName: kind === "admin" ? `${c.name}-admin` : c.name,
      server: c.serverUrl,
      caPem: c.caPem,
      user,
    });
    return { status: 200, body: { kubeconfigs: [{ name: prefix, value: Buffer.from(yaml, "utf8").toString("base64") }] } };
  }

  private require(ctx: RequestContext): ClusterRecord {
    const group = this.tenancy.requireResourceGroup(ctx.params["sub"]!, ctx.params["rg"]!);
    const name = ctx.params["name"]!;
    const id = `/subscriptions/${group.subscriptionId}/resourcegroups/${group.name}/providers/Microsoft.ContainerService/managedClusters/${name}`;
    const cluster = this.byId.get(idKey(id));
    if (!cluster) throw armErrors.resourceNotFound(CLUSTER_TYPE, name, group.name);
    return cluster;
  }

  /** Shaped like the recorded GET (azure-sdk-assets recording_managedclusters_get_test.json). */
  render(c: ClusterRecord): Record<string, unknown> {
    const properties: Record<string, unknown> = {
      provisioningState: "Succeeded",
      powerState: { code: "Running" },
      kubernetesVersion: c.kubernetesVersion,
      currentKubernetesVersion: c.kubernetesVersion,
      dnsPrefix: c.dnsPrefix,
      fqdn: c.fqdn,
      azurePortalFQDN: c.fqdn.replace(".hcp.", ".portal.hcp."),
      agentPoolProfiles: [
        {
          name: "system",
          count: 1,
          vmSize: "Standard_DS2_v2",
          osDiskSizeGB: 128,
          maxPods: 110,
          type: "VirtualMachineScaleSets",
          provisioningState: "Succeeded",
          powerState: { code: "Running" },
          orchestratorVersion: c.kubernetesVersion,
          currentOrchestratorVersion: c.kubernetesVersion,
          mode: "System",
          osType: "Linux",
          osSKU: "Ubuntu",
        },
      ],
      nodeResourceGroup: `MC_${c.resourceGroup}_${c.name}_${c.location}`,
      enableRBAC: true,
      disableLocalAccounts: c.disableLocalAccounts,
      supportPlan: "KubernetesOfficial",
      networkProfile: {
        networkPlugin: c.network.networkPlugin,
        ...(c.network.networkPluginMode ? { networkPluginMode: c.network.networkPluginMode } : {}),
        loadBalancerSku: "Standard",
        ...(c.network.podCidr ? { podCidr: c.network.podCidr } : {}),
        serviceCidr: c.network.serviceCidr,
        dnsServiceIP: c.network.dnsServiceIP,
        outboundType: "loadBalancer",
        ...(c.network.podCidr ? { podCidrs: [c.network.podCidr] } : {}),
        serviceCidrs: [c.network.serviceCidr],
        ipFamilies: ["IPv4"],
      },
      maxAgentPools: 100,
      oidcIssuerProfile: { enabled: false },
      securityProfile: {},
    };
    if (c.aadProfile) properties["aadProfile"] = { managed: true, tenantID: this.tenantId, ...c.aadProfile };
    return {
      id: c.id,
      location: c.location,
      name: c.name,
      type: "Microsoft.ContainerService/ManagedClusters",
      properties,
      sku: { name: "Base", tier: "Free" },
    };
  }

  private token(): string {
    return this.newId().replace(/-/g, "");
  }
}
