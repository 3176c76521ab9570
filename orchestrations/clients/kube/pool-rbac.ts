/**
 * The cluster RBAC a pool needs once, so its nodes' kubelets can TLS-bootstrap: the pool's bootstrap group may create
 * CSRs (`system:node-bootstrapper`) and its node-client CSRs are auto-approved (`...:nodeclient`). Deliberately
 * nothing else: AKSFlexNode also binds `system:node`, which hands every token holder node-level read access before it
 * has a node identity; and never cluster-admin. The kubelet gets `system:node:<name>` from its issued certificate.
 *
 * And one binding for after the join: the kubelet renews its certificate (rotateCertificates) as `system:node:<name>`,
 * and kube-controller-manager approves that only with `...:selfnodeclient` granted, which upstream ships unbound
 * (kubeadm binds it to `system:nodes`, as AKSFlexNode's kubeadm-mode setup does). Without it a flex node goes NotReady
 * when its first certificate expires, with its bootstrap token long deleted. The approver signs a renewal only for the
 * requesting node's own name, so granting it to every node grants nothing across nodes. Bound per pool under the
 * pool's name, so deleting one pool's bindings leaves the others' nodes renewing.
 */
import { poolBootstrapGroup } from "./bootstrap-token.js";
import type { KubeClient } from "./kube-client.js";
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE, POOL_LABEL } from "./labels.js";

export const NODE_BOOTSTRAPPER_ROLE = "system:node-bootstrapper";
export const NODE_CLIENT_APPROVER_ROLE = "system:certificates.k8s.io:certificatesigningrequests:nodeclient";
export const NODE_CLIENT_RENEWAL_ROLE = "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient";
/** Every kubelet's group once it holds a `system:node:<name>` certificate. */
const NODES_GROUP = "system:nodes";

type BindingSpec = Parameters<KubeClient["applyClusterRoleBinding"]>[0];

export function poolBootstrapRbac(pool: string): { bindings: BindingSpec[] } {
  const group = poolBootstrapGroup(pool);
  const labels = { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [POOL_LABEL]: pool };
  const binding = (suffix: string, role: string, subject = group): BindingSpec => ({
    name: `flexnode:${pool}:${suffix}`,
    roleRef: { kind: "ClusterRole", name: role },
    subjects: [{ kind: "Group", name: subject }],
    labels,
  });
  return {
    bindings: [
      binding("node-bootstrapper", NODE_BOOTSTRAPPER_ROLE),
      binding("auto-approve-node-client-csr", NODE_CLIENT_APPROVER_ROLE),
      binding("auto-approve-node-client-renewal", NODE_CLIENT_RENEWAL_ROLE, NODES_GROUP),
    ],
  };
}
