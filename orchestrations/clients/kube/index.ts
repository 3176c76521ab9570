/** The service's Kubernetes API client for target clusters (bootstrap tokens, pool RBAC, Node checks). */
export { bootstrapKubeconfig } from "./bootstrap-kubeconfig.js";
export {
  BOOTSTRAP_TOKEN_NAMESPACE,
  BOOTSTRAP_TOKEN_PATTERN,
  BOOTSTRAP_TOKEN_SECRET_TYPE,
  bootstrapTokenSecret,
  newBootstrapToken,
  poolBootstrapGroup,
  type BootstrapTokenSecret,
} from "./bootstrap-token.js";
export { KubeApiError, KubeResponseError, KubeTimeoutError } from "./kube-api-error.js";
export {
  KubeClient,
  type ApplyOutcome,
  type ClusterRoleBindingSpec,
  type ClusterRoleSpec,
  type KubeClientOptions,
  type NodeView,
  type SecretSpec,
  type SecretView,
} from "./kube-client.js";
export {
  AKS_ENTRA_SERVER_APP_ID,
  ClientCertificateOnlyError,
  EntraTokenRequiredError,
  KubeconfigError,
  kubeClusterFromKubeconfig,
  kubeTargetFromKubeconfig,
  type KubeTarget,
} from "./kube-target.js";
export { MANAGED_BY_LABEL, MANAGED_BY_VALUE, NODE_ID_LABEL, nodeSecretsSelector, POOL_LABEL } from "./labels.js";
export { NODE_BOOTSTRAPPER_ROLE, NODE_CLIENT_APPROVER_ROLE, NODE_CLIENT_RENEWAL_ROLE, poolBootstrapRbac } from "./pool-rbac.js";
export { AksAccess, AksAccessError, type AksAccessOptions, type KubeAccess } from "./aks-access.js";
