/**
 * The bootstrap-policy ClusterRoles (and the one ClusterRoleBinding) a fresh cluster already has that matter for
 * kubelet TLS bootstrap, with their upstream rules. `system:node` is abbreviated to its main rules; nothing here
 * depends on its exact list, only on it being far broader than what bootstrapping needs.
 */
import type { PolicyRule } from "./request-body.js";

const BOOTSTRAP_LABELS = { "kubernetes.io/bootstrapping": "rbac-defaults" };
const AUTOUPDATE = { "rbac.authorization.kubernetes.io/autoupdate": "true" };

export interface BuiltInRole {
  name: string;
  rules: PolicyRule[];
}

export interface BuiltInBinding {
  name: string;
  roleName: string;
  groups: string[];
}

export const BUILT_IN_CLUSTER_ROLES: readonly BuiltInRole[] = [
  {
    name: "cluster-admin",
    rules: [
      { apiGroups: ["*"], resources: ["*"], verbs: ["*"] },
      { nonResourceURLs: ["*"], verbs: ["*"] },
    ],
  },
  {
    name: "system:node-bootstrapper",
    rules: [{ apiGroups: ["certificates.k8s.io"], resources: ["certificatesigningrequests"], verbs: ["create", "get", "list", "watch"] }],
  },
  {
    name: "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
    rules: [{ apiGroups: ["certificates.k8s.io"], resources: ["certificatesigningrequests/nodeclient"], verbs: ["create"] }],
  },
  {
    name: "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
    rules: [{ apiGroups: ["certificates.k8s.io"], resources: ["certificatesigningrequests/selfnodeclient"], verbs: ["create"] }],
  },
  {
    name: "system:node",
    rules: [
      { apiGroups: ["authentication.k8s.io"], resources: ["tokenreviews"], verbs: ["create"] },
      { apiGroups: ["authorization.k8s.io"], resources: ["localsubjectaccessreviews", "subjectaccessreviews"], verbs: ["create"] },
      { apiGroups: [""], resources: ["services"], verbs: ["get", "list", "watch"] },
      { apiGroups: [""], resources: ["nodes"], verbs: ["create", "get", "list", "watch", "patch", "update"] },
      { apiGroups: [""], resources: ["nodes/status"], verbs: ["patch", "update"] },
      { apiGroups: ["", "events.k8s.io"], resources: ["events"], verbs: ["create", "patch", "update"] },
      { apiGroups: [""], resources: ["pods"], verbs: ["get", "list", "watch", "create", "delete"] },
      { apiGroups: [""], resources: ["pods/status"], verbs: ["patch", "update"] },
      { apiGroups: [""], resources: ["configmaps", "secrets"], verbs: ["get", "list", "watch"] },
      { apiGroups: [""], resources: ["persistentvolumeclaims", "persistentvolumes"], verbs: ["get"] },
      { apiGroups: ["certificates.k8s.io"], resources: ["certificatesigningrequests"], verbs: ["create", "get", "list", "watch"] },
      { apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["create", "delete", "get", "patch", "update"] },
    ],
  },
];

export const BUILT_IN_CLUSTER_ROLE_BINDINGS: readonly BuiltInBinding[] = [{ name: "cluster-admin", roleName: "cluster-admin", groups: ["system:masters"] }];

export const builtInMetadata = { labels: BOOTSTRAP_LABELS, annotations: AUTOUPDATE };
