/**
 * The cluster RBAC a pool needs once, so its nodes' kubelets can TLS-bootstrap: the pool's bootstrap group may create
 * CSRs (`system:node-bootstrapper`) and its node-client CSRs are auto-approved (`...:nodeclient`). Deliberately
 * nothing else: AKSFlexNode also binds `system:node`, which hands every token holder node-level read access before it
 * has a node identity; and never cluster-admin. The kubelet gets `system:node:<name>` from its issued certificate.
 */
import { poolBootstrapGroup } from "./bootstrap-token.js";
import type { KubeClient } from "./kube-client.js";
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE, POOL_LABEL } from "./labels.js";

export const NODE_BOOTSTRAPPER_ROLE = "system:node-bootstrapper";
export const NODE_CLIENT_APPROVER_ROLE = "system:certificates.k8s.io:certificatesigningrequests:nodeclient";

type BindingSpec = Parameters<KubeClient["applyClusterRoleBinding"]>[0];

export function poolBootstrapRbac(pool: string): { bindings: BindingSpec[] } {
  const group = poolBootstrapGroup(pool);
  const labels = { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [POOL_LABEL]: pool };
  const binding = (suffix: string, role: string): BindingSpec => ({
    name: `flexnode:${pool}:${suffix}`,
    roleRef: { kind: "ClusterRole", name: role },
    subjects: [{ kind: "Group", name: group }],
    labels,
  });
  return {
    bindings: [binding("node-bootstrapper", NODE_BOOTSTRAPPER_ROLE), binding("auto-approve-node-client-csr", NODE_CLIENT_APPROVER_ROLE)],
  };
}
