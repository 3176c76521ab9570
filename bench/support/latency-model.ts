/**
 * The fixed latency model of the benchmarks, in emulated milliseconds: what each remote call and each node step costs.
 * Figures are deliberately round and plausible, not measured from Azure; the point is to see what the orchestration
 * adds on top of whatever the dependencies cost, and the model is printed with every result so it can be argued with.
 */
import type { RouteInfo } from "../../test/arm-emulator/index.js";

export interface LatencyModel {
  arm: {
    /** Every ARM request but role-assignment PUTs (the machine PUT answers 200 at once, as HybridCompute does). */
    requestMs: number;
    /** PUT of a role assignment. */
    roleAssignmentPutMs: number;
    /** How long after its PUT a machine's system-assigned identity has a principalId (absent from reads until then). */
    machineIdentityDelayMs: number;
  };
  /** Every Kubernetes API request. */
  kubeRequestMs: number;
  serviceBus: {
    /** Sending one envelope to a node's queue. */
    sendMs: number;
    /** Creating or deleting a node's queue (data-plane management). */
    manageMs: number;
  };
  /** How long after the kubelet joins its Node turns Ready. */
  kubeletReadyAfterMs: number;
  /** How long the agent takes for each step, by step id, from receiving the envelope to sending its result. */
  nodeStepMs: Record<string, number>;
  /** Steps not in the table. */
  defaultNodeStepMs: number;
}

export const LATENCY_MODEL: LatencyModel = {
  arm: { requestMs: 150, roleAssignmentPutMs: 300, machineIdentityDelayMs: 2_000 },
  kubeRequestMs: 20,
  serviceBus: { sendMs: 10, manageMs: 10 },
  kubeletReadyAfterMs: 5_000,
  nodeStepMs: {
    preflight: 2_000,
    "kernel-modules": 500,
    sysctl: 500,
    "container-runtime": 20_000,
    "kubernetes-binaries": 30_000,
    "cni-plugins": 5_000,
    "kubelet-config": 500,
    "bootstrap-kubeconfig": 1_000,
    "start-kubelet": 5_000,
    "kubelet-client-certificate": 15_000,
    reset: 5_000,
  },
  defaultNodeStepMs: 1_000,
};

/** The latency of one ARM request under the model. */
export function armLatencyMs(model: LatencyModel, route: RouteInfo): number {
  if (route.route === "roleAssignments.put") return model.arm.roleAssignmentPutMs;
  return model.arm.requestMs;
}

export const nodeStepMs = (model: LatencyModel, stepId: string): number => model.nodeStepMs[stepId] ?? model.defaultNodeStepMs;
