/**
 * The critical path of one onboarding under a latency model, computed from the model and the saga's design (DESIGN
 * §3), not from a run: each remote operation the saga needs, once, in the saga's order, at its modelled latency, with
 * no retries, no polling slack and no timer waits. What a run takes beyond this is the orchestration's overhead.
 *
 * Per phase:
 * - openMailbox: create the node's queue.
 * - ensureArcMachine: PUT the machine, then learn its principal the moment it exists (a read answered then).
 * - grantAccess: one PUT per role grant, one after the other (as the saga issues them).
 * - issueKubeletCredential: read the cluster, fetch its admin credential once, apply the pool's bootstrap RBAC
 *   bindings (one request each), create the bootstrap-token Secret.
 * - runNodeSteps: per step, send the envelope and wait for the node to do it.
 * - verifyReady: wait for the kubelet to turn Ready, then read the Node once.
 * - finalize: delete the bootstrap-token Secret.
 * Registry (Azure Tables) calls are not in the model, so they cost nothing on either side.
 * The saga's waits (growing polls since issue 16) are not in it either: how the saga learns of the principal or of
 * Ready is overhead, whatever it is.
 */
import type { LatencyModel } from "./latency-model.js";
import { nodeStepMs } from "./latency-model.js";

export interface PathItem {
  what: string;
  ms: number;
}

export interface PathPhase {
  phase: string;
  items: PathItem[];
  ms: number;
}

export interface SagaShape {
  roleGrants: number;
  rbacBindings: number;
  /** The plan's step ids, in order. */
  steps: readonly string[];
}

export function criticalPath(model: LatencyModel, shape: SagaShape): { phases: PathPhase[]; totalMs: number } {
  const { arm, serviceBus, kubeRequestMs: kube } = model;
  const phases: [string, PathItem[]][] = [
    ["openMailbox", [{ what: "create queue", ms: serviceBus.manageMs }]],
    [
      "ensureArcMachine",
      [
        { what: "PUT machine", ms: arm.requestMs },
        { what: "identity gets its principalId", ms: arm.machineIdentityDelayMs },
      ],
    ],
    ["grantAccess", Array.from({ length: shape.roleGrants }, (_, i) => ({ what: `PUT role assignment ${i + 1}`, ms: arm.roleAssignmentPutMs }))],
    [
      "issueKubeletCredential",
      [
        { what: "GET cluster", ms: arm.requestMs },
        { what: "POST listClusterAdminCredential (once)", ms: arm.requestMs },
        ...Array.from({ length: shape.rbacBindings }, (_, i) => ({ what: `apply ClusterRoleBinding ${i + 1}`, ms: kube })),
        { what: "create bootstrap-token Secret", ms: kube },
      ],
    ],
    [
      "runNodeSteps",
      shape.steps.flatMap((step) => [
        { what: `send ${step}`, ms: serviceBus.sendMs },
        { what: `node runs ${step}`, ms: nodeStepMs(model, step) },
      ]),
    ],
    [
      "verifyReady",
      [
        { what: "kubelet turns Ready", ms: model.kubeletReadyAfterMs },
        { what: "GET Node", ms: kube },
      ],
    ],
    // The Secret's name is not the node's alone (a 6-character id): it is read to see it is the node's, then deleted.
    [
      "finalize",
      [
        { what: "GET bootstrap-token Secret", ms: kube },
        { what: "delete bootstrap-token Secret", ms: kube },
      ],
    ],
  ];
  const out = phases.map(([phase, items]) => ({ phase, items, ms: items.reduce((a, i) => a + i.ms, 0) }));
  return { phases: out, totalMs: out.reduce((a, p) => a + p.ms, 0) };
}
