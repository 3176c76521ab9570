/**
 * The composition root: the service's long-lived dependencies, built once per process from the app settings and shared
 * by every trigger and activity (clients are expensive to build and hold connection pools). Rebuilt only if the
 * settings they depend on change, which in practice happens only in tests. Tests and the local sandbox replace parts
 * with `overrideServices` (emulator transports, clocks) — the same objects, pointed elsewhere.
 */
import { createPrivateKey, type KeyObject } from "node:crypto";
import { isRestError } from "@azure/core-rest-pipeline";
import type { TokenCredential } from "@azure/core-auth";
import { DefaultAzureCredential } from "@azure/identity";
import { ServiceBusAdministrationClient, ServiceBusClient } from "@azure/service-bus";
import { ArmClients } from "../orchestrations/clients/arm/arm-clients.js";
import { AKS_ENTRA_SERVER_APP_ID, EntraTokenRequiredError, KubeClient, kubeClusterFromKubeconfig, kubeTargetFromKubeconfig } from "../orchestrations/clients/kube/index.js";
import { Mailbox } from "../orchestrations/clients/mailbox/mailbox.js";
import { Registry } from "../orchestrations/clients/registry/registry.js";
import { OneTimeSecrets } from "../orchestrations/clients/secrets/one-time-secrets.js";
import { settings, type Settings } from "../orchestrations/settings.js";

export interface KubeAccess {
  client: KubeClient;
  server: string;
  caPem: string;
}

export class NotConfiguredError extends Error {
  constructor(readonly what: string) {
    super(`${what} is not set`);
    this.name = "NotConfiguredError";
  }
}

export interface Services {
  settings: Settings;
  registry: Registry;
  now: () => Date;
  /** The node mailboxes; NotConfiguredError when Service Bus is not configured. */
  mailbox(): Mailbox;
  /** The key that signs step envelopes; NotConfiguredError when not configured. */
  signingKey(): KeyObject;
  secrets(): OneTimeSecrets;
  arm(): ArmClients;
  /** The service's Entra identity (managed identity in Azure), for tokens other than ARM's (the AKS server app). */
  credential(): TokenCredential;
  /** A Kubernetes API client for a cluster, with the service's access to it, and the server and CA nodes will use. */
  kube(clusterResourceId: string): Promise<KubeAccess>;
}

let cached: { key: string; services: Services; ready: Promise<void> } | undefined;
let overrides: Partial<Omit<Services, "settings" | "registry">> = {};

/** Replaces parts of the services (tests, the local sandbox). `{}` restores the defaults. */
export function overrideServices(parts: Partial<Omit<Services, "settings" | "registry">>): void {
  overrides = parts;
}

export async function services(): Promise<Services> {
  const s = settings();
  const key = JSON.stringify([
    s.REGISTRY_CONNECTION, s.REGISTRY_TABLE_ENDPOINT, s.REGISTRY_TABLE_PREFIX, s.AZURE_CLIENT_ID, s.SERVICEBUS_CONNECTION,
    s.SERVICEBUS_CONNECTION__fullyQualifiedNamespace, s.SERVICEBUS_NODE_NAMESPACE, s.MAILBOX_LISTEN_KEY, s.MAILBOX_SEND_KEY,
    s.SERVICE_SIGNING_KEY, s.SECRETS_KEY, s.ARM_ENDPOINT,
  ]);
  if (!cached || cached.key !== key) {
    const credential = lazy<TokenCredential>(() => new DefaultAzureCredential({ managedIdentityClientId: s.AZURE_CLIENT_ID }));
    const registry = new Registry(
      s.REGISTRY_CONNECTION ? { connectionString: s.REGISTRY_CONNECTION, prefix: s.REGISTRY_TABLE_PREFIX } : { endpoint: s.REGISTRY_TABLE_ENDPOINT, credential: credential(), prefix: s.REGISTRY_TABLE_PREFIX },
    );
    const arm = lazy(() => new ArmClients({ credential: credential(), endpoint: s.ARM_ENDPOINT }));
    const built: Services = {
      settings: s,
      registry,
      now: () => new Date(),
      mailbox: lazy(() => buildMailbox(s, credential)),
      signingKey: lazy(() => {
        if (!s.SERVICE_SIGNING_KEY) throw new NotConfiguredError("SERVICE_SIGNING_KEY");
        return createPrivateKey(s.SERVICE_SIGNING_KEY);
      }),
      secrets: lazy(() => {
        if (!s.SECRETS_KEY) throw new NotConfiguredError("SECRETS_KEY");
        return new OneTimeSecrets(registry, Buffer.from(s.SECRETS_KEY, "base64"));
      }),
      arm,
      credential,
      // Reads the ARM clients and credential at call time, so overrides (tests, sandbox) also serve this path.
      kube: (clusterResourceId) => cachedKubeAccess((overrides.arm ?? arm)(), (overrides.credential ?? credential)(), clusterResourceId),
    };
    cached = { key, services: built, ready: registry.ensureTables() };
  }
  const current = cached;
  try {
    await current.ready;
  } catch (error) {
    // A failed table check must not poison the process: the next call tries again.
    if (cached === current) cached = undefined;
    throw error;
  }
  return { ...current.services, ...overrides, settings: s };
}

/**
 * The cluster's API server and CA, and a token the service may use there. Clusters with local accounts: AKS's admin
 * credential. Clusters with local accounts disabled (Entra ID only, the AKS default for new secure clusters) refuse
 * static credentials with 400; then the server and CA come from the user credential (an exec/kubelogin kubeconfig)
 * and the token is the service identity's own Entra token for the AKS server application — the identity needs
 * *Azure Kubernetes Service RBAC Cluster Admin* on the cluster (or a Kubernetes RBAC binding for its object id).
 */
const KUBE_ACCESS_TTL_MS = 10 * 60_000;
const kubeAccessCache = new WeakMap<ArmClients, Map<string, { access: Promise<KubeAccess>; until: number }>>();

/**
 * Kubernetes access per cluster, reused for a few minutes: listClusterAdminCredential is an ARM POST and counts
 * against the write budget, and every Kubernetes activity needs access. Keyed by the ARM clients too, so a new
 * configuration (or a test's emulator) never sees another's cluster. Well inside the credential's lifetime (admin
 * credentials: 2 years by default; Entra tokens: an hour).
 */
function cachedKubeAccess(arm: ArmClients, credential: TokenCredential, clusterResourceId: string): Promise<KubeAccess> {
  let perArm = kubeAccessCache.get(arm);
  if (!perArm) kubeAccessCache.set(arm, (perArm = new Map()));
  const key = clusterResourceId.toLowerCase();
  const hit = perArm.get(key);
  if (hit && hit.until > Date.now()) return hit.access;
  const access = kubeAccess(arm, credential, clusterResourceId);
  perArm.set(key, { access, until: Date.now() + KUBE_ACCESS_TTL_MS });
  // A failure is not cached: the next activity asks again.
  access.catch(() => perArm.delete(key));
  return access;
}

async function kubeAccess(arm: ArmClients, credential: TokenCredential, clusterResourceId: string): Promise<KubeAccess> {
  const m = /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/Microsoft\.ContainerService\/managedClusters\/([^/]+)$/i.exec(clusterResourceId);
  if (!m) throw new Error(`not an AKS cluster id: ${clusterResourceId}`);
  const clusters = arm.containerService(m[1]!).managedClusters;
  let kubeconfig: Uint8Array | undefined;
  try {
    kubeconfig = (await clusters.listClusterAdminCredentials(m[2]!, m[3]!)).kubeconfigs?.[0]?.value;
  } catch (error) {
    if (!(isRestError(error) && error.statusCode === 400)) throw error;
    return kubeWithEntraToken(credential, (await clusters.listClusterUserCredentials(m[2]!, m[3]!)).kubeconfigs?.[0]?.value, clusterResourceId);
  }
  if (!kubeconfig) throw new Error(`AKS returned no admin kubeconfig for ${clusterResourceId}`);
  const yaml = Buffer.from(kubeconfig).toString("utf8");
  try {
    const target = kubeTargetFromKubeconfig(yaml);
    return { client: new KubeClient(target), server: target.server, caPem: target.caPem };
  } catch (error) {
    // An Entra-integrated cluster may answer even the admin credential with an exec kubeconfig.
    if (error instanceof EntraTokenRequiredError) return kubeWithEntraToken(credential, kubeconfig, clusterResourceId);
    throw error;
  }
}

async function kubeWithEntraToken(credential: TokenCredential, kubeconfig: Uint8Array | undefined, clusterResourceId: string): Promise<KubeAccess> {
  if (!kubeconfig) throw new Error(`AKS returned no user kubeconfig for ${clusterResourceId}`);
  const cluster = kubeClusterFromKubeconfig(Buffer.from(kubeconfig).toString("utf8"));
  const token = await credential.getToken(`${AKS_ENTRA_SERVER_APP_ID}/.default`);
  if (!token) throw new Error(`no Entra token for the AKS server application (${AKS_ENTRA_SERVER_APP_ID})`);
  return { client: new KubeClient({ ...cluster, token: token.token }), server: cluster.server, caPem: cluster.caPem };
}

function buildMailbox(s: Settings, credential: () => TokenCredential): Mailbox {
  if (!s.MAILBOX_LISTEN_KEY || !s.MAILBOX_SEND_KEY) throw new NotConfiguredError("MAILBOX_LISTEN_KEY and MAILBOX_SEND_KEY");
  let host: string;
  let client: ServiceBusClient;
  let admin: ServiceBusAdministrationClient;
  if (s.SERVICEBUS_CONNECTION) {
    host = /Endpoint=sb:\/\/([^/;]+)/i.exec(s.SERVICEBUS_CONNECTION)![1]!;
    client = new ServiceBusClient(s.SERVICEBUS_CONNECTION);
    admin = new ServiceBusAdministrationClient(s.SERVICEBUS_CONNECTION);
  } else if (s.SERVICEBUS_CONNECTION__fullyQualifiedNamespace) {
    host = s.SERVICEBUS_CONNECTION__fullyQualifiedNamespace;
    client = new ServiceBusClient(host, credential());
    admin = new ServiceBusAdministrationClient(host, credential());
  } else {
    throw new NotConfiguredError("SERVICEBUS_CONNECTION");
  }
  return new Mailbox({
    client,
    admin,
    namespaceUri: `sb://${host}`,
    nodeNamespace: s.SERVICEBUS_NODE_NAMESPACE ?? host,
    listenRule: { name: s.MAILBOX_LISTEN_RULE, key: s.MAILBOX_LISTEN_KEY },
    sendRule: { name: s.MAILBOX_SEND_RULE, key: s.MAILBOX_SEND_KEY },
  });
}

function lazy<T>(build: () => T): () => T {
  let value: { v: T } | undefined;
  return () => (value ??= { v: build() }).v;
}
