/**
 * Kubeconfig YAML as AKS returns it from the credential APIs: one cluster, one user, one context. Written by hand
 * (no YAML library) and kept to plain scalars that need no quoting.
 */

/**
 * A static user as AKS issues it to clusters with local accounts: client certificate and key, and (admin and user
 * credentials of most clusters) a bearer token as well; `token` undefined is the certificate-only shape.
 */
export type KubeconfigUser =
  | { kind: "static"; name: string; token: string | undefined; clientCertificatePem: string; clientKeyPem: string }
  | { kind: "exec"; name: string; tenantId: string; serverId: string; clientId: string };

export interface KubeconfigSpec {
  clusterName: string;
  contextName: string;
  server: string;
  caPem: string;
  user: KubeconfigUser;
}

/** AKS AAD server application id (the `--server-id` kubelogin is given). */
export const AKS_AAD_SERVER_ID = "6dae42f8-4368-4678-94ff-3960e28e3630";
/** Azure CLI's public client, the default `--client-id` in AKS exec kubeconfigs. */
export const AKS_AAD_CLIENT_ID = "80faf920-1908-4b52-b5ef-a8e7bedfc67a";

export function renderKubeconfig(spec: KubeconfigSpec): string {
  const ca = Buffer.from(spec.caPem, "utf8").toString("base64");
  return [
    "apiVersion: v1",
    "clusters:",
    "- cluster:",
    `    certificate-authority-data: ${ca}`,
    `    server: ${spec.server}`,
    `  name: ${spec.clusterName}`,
    "contexts:",
    "- context:",
    `    cluster: ${spec.clusterName}`,
    `    user: ${spec.user.name}`,
    `  name: ${spec.contextName}`,
    `current-context: ${spec.contextName}`,
    "kind: Config",
    "preferences: {}",
    "users:",
    `- name: ${spec.user.name}`,
    "  user:",
    ...userLines(spec.user),
    "",
  ].join("\n");
}

function userLines(user: KubeconfigUser): string[] {
  if (user.kind === "static") {
    return [
      `    client-certificate-data: ${Buffer.from(user.clientCertificatePem, "utf8").toString("base64")}`,
      `    client-key-data: ${Buffer.from(user.clientKeyPem, "utf8").toString("base64")}`,
      ...(user.token === undefined ? [] : [`    token: ${user.token}`]),
    ];
  }
  return [
    "    exec:",
    "      apiVersion: client.authentication.k8s.io/v1beta1",
    "      args:",
    "      - get-token",
    "      - --environment",
    "      - AzurePublicCloud",
    "      - --server-id",
    `      - ${user.serverId}`,
    "      - --client-id",
    `      - ${user.clientId}`,
    "      - --tenant-id",
    `      - ${user.tenantId}`,
    "      - --login",
    "      - devicecode",
    "      command: kubelogin",
    "      env: null",
    "      provideClusterInfo: false",
  ];
}
