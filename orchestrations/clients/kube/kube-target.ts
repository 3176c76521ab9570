/**
 * Where and how to reach a cluster's API server, read from an AKS credential kubeconfig. Only what the service can use
 * without touching files, env or child processes is accepted: inline CA data and a static token. AKS's static users
 * carry a client certificate and key next to the token; the token is what the client sends (a bearer token is enough
 * for the API server, and the key never has to leave the kubeconfig). A certificate-only user is refused with a
 * ClientCertificateOnlyError. An exec (kubelogin) user is a cluster with Entra ID auth: the service must get a token
 * for the AKS server app itself, so it gets a typed error carrying the cluster's server and CA and the scope to ask for.
 */
import { parse } from "yaml";
import { z } from "zod";

export interface KubeTarget {
  /** `https://<fqdn>:443` */
  server: string;
  /** Cluster CA bundle (PEM); the only trust anchor for the API server's certificate. */
  caPem: string;
  /** Bearer token: the admin kubeconfig's static token, or an Entra access token for the AKS server app. */
  token: string;
}

/** The AKS AAD server application; kubelogin's `--server-id`. */
export const AKS_ENTRA_SERVER_APP_ID = "6dae42f8-4368-4678-94ff-3960e28e3630";

export class KubeconfigError extends Error {
  override readonly name: string = "KubeconfigError";
}

/** The kubeconfig's user authenticates through Entra ID (exec kubelogin or the legacy azure auth-provider). */
export class EntraTokenRequiredError extends KubeconfigError {
  override readonly name = "EntraTokenRequiredError";
  /** The cluster half of the target; add an Entra token to make a KubeTarget. */
  readonly cluster: { server: string; caPem: string };
  /** The AKS server application the token must be for. */
  readonly serverId: string;
  /** Token scope to request, e.g. with `credential.getToken(scope)`. */
  readonly scope: string;

  constructor(cluster: { server: string; caPem: string }, serverId: string) {
    super(
      `the kubeconfig user authenticates with Entra ID (exec/kubelogin); the service cannot run it and must use an Entra access token for the AKS server app ${serverId} (scope ${serverId}/.default) with this cluster's server and CA instead`,
    );
    this.cluster = cluster;
    this.serverId = serverId;
    this.scope = `${serverId}/.default`;
  }
}

/** The kubeconfig user has a client certificate and no token; the service's client authenticates with bearer tokens only. */
export class ClientCertificateOnlyError extends KubeconfigError {
  override readonly name = "ClientCertificateOnlyError";
  constructor() {
    super("the kubeconfig user has a client certificate and no token; the service authenticates to the API server with a bearer token only");
  }
}

// Parsed with the YAML failsafe schema, so every scalar is a string: a token or CA that happens to look like a number
// or a boolean stays intact, and `true`/`false` flags are compared as text.
const Cluster = z.looseObject({
  server: z.string(),
  "certificate-authority-data": z.string().optional(),
  "certificate-authority": z.string().optional(),
  "insecure-skip-tls-verify": z.string().optional(),
  "tls-server-name": z.string().optional(),
  "proxy-url": z.string().optional(),
});
const Exec = z.looseObject({ command: z.string().optional(), args: z.array(z.string()).optional() });
const User = z.looseObject({
  token: z.string().optional(),
  tokenFile: z.string().optional(),
  exec: Exec.optional(),
  "auth-provider": z.looseObject({ name: z.string().optional() }).optional(),
  "client-certificate-data": z.string().optional(),
});
const Context = z.looseObject({ cluster: z.string(), user: z.string() });
const Kubeconfig = z.looseObject({
  clusters: z.array(z.looseObject({ name: z.string(), cluster: Cluster })).min(1),
  users: z.array(z.looseObject({ name: z.string(), user: User })).min(1),
  contexts: z.array(z.looseObject({ name: z.string(), context: Context })).min(1),
  "current-context": z.string().optional(),
});
type Kubeconfig = z.infer<typeof Kubeconfig>;

export function kubeTargetFromKubeconfig(yaml: string): KubeTarget {
  const config = readKubeconfig(yaml);
  const { cluster, user } = selected(config);
  const server = clusterTarget(cluster);
  if (user.exec || user["auth-provider"]) throw new EntraTokenRequiredError(server, serverIdOf(user.exec?.args));
  if (user.token === undefined || user.token === "") {
    if (user["client-certificate-data"] && !user.tokenFile) throw new ClientCertificateOnlyError();
    const kind = user.tokenFile ? "tokenFile" : user["client-certificate-data"] ? "client certificate" : "no credential";
    throw new KubeconfigError(`the kubeconfig user has ${kind}; only an inline token is supported`);
  }
  return { ...server, token: user.token };
}

/** The server and CA alone, for clusters whose token the caller obtains elsewhere (Entra). */
export function kubeClusterFromKubeconfig(yaml: string): { server: string; caPem: string } {
  return clusterTarget(selected(readKubeconfig(yaml)).cluster);
}

function readKubeconfig(yaml: string): Kubeconfig {
  let document: unknown;
  try {
    document = parse(yaml, { schema: "failsafe", maxAliasCount: 10 });
  } catch (error) {
    throw new KubeconfigError(`the kubeconfig is not valid YAML: ${error instanceof Error ? error.message : String(error)}`);
  }
  const parsed = Kubeconfig.safeParse(document);
  if (!parsed.success) throw new KubeconfigError(`the kubeconfig is malformed: ${z.prettifyError(parsed.error)}`);
  return parsed.data;
}

function selected(config: Kubeconfig): { cluster: z.infer<typeof Cluster>; user: z.infer<typeof User> } {
  const contextName = config["current-context"] ?? (config.contexts.length === 1 ? config.contexts[0]!.name : undefined);
  if (contextName === undefined || contextName === "") throw new KubeconfigError("the kubeconfig has several contexts and no current-context");
  const context = config.contexts.find((c) => c.name === contextName)?.context;
  if (!context) throw new KubeconfigError(`current-context ${contextName} is not among the contexts`);
  const cluster = config.clusters.find((c) => c.name === context.cluster)?.cluster;
  if (!cluster) throw new KubeconfigError(`context ${contextName} names cluster ${context.cluster}, which is not defined`);
  const user = config.users.find((u) => u.name === context.user)?.user;
  if (!user) throw new KubeconfigError(`context ${contextName} names user ${context.user}, which is not defined`);
  return { cluster, user };
}

function clusterTarget(cluster: z.infer<typeof Cluster>): { server: string; caPem: string } {
  if (cluster["insecure-skip-tls-verify"] === "true") throw new KubeconfigError("the kubeconfig disables TLS verification; refusing it");
  if (cluster["tls-server-name"] !== undefined || cluster["proxy-url"] !== undefined) {
    throw new KubeconfigError("the kubeconfig needs tls-server-name or proxy-url, which the client does not support");
  }
  let url: URL;
  try {
    url = new URL(cluster.server);
  } catch {
    throw new KubeconfigError(`the cluster server is not a URL: ${cluster.server}`);
  }
  if (url.protocol !== "https:") throw new KubeconfigError(`the cluster server must be https: ${cluster.server}`);
  const data = cluster["certificate-authority-data"];
  if (data === undefined || data === "") {
    const why = cluster["certificate-authority"] ? "a CA file path, which the service cannot read" : "no CA";
    throw new KubeconfigError(`the cluster has ${why}; certificate-authority-data is required`);
  }
  const caPem = Buffer.from(data, "base64").toString("utf8");
  if (!caPem.includes("-----BEGIN CERTIFICATE-----")) throw new KubeconfigError("certificate-authority-data is not a base64 PEM certificate");
  return { server: cluster.server, caPem };
}

function serverIdOf(args: readonly string[] | undefined): string {
  const at = args?.indexOf("--server-id") ?? -1;
  return (at >= 0 ? args?.[at + 1] : undefined) ?? AKS_ENTRA_SERVER_APP_ID;
}
