/**
 * `--fail-at <saga phase>`: make a phase of the onboarding saga fail ON THE AZURE SIDE, the way it fails against
 * Azure, so a newcomer can watch compensation of an Azure failure: each phase's calls answer a 5xx from the emulator
 * that serves them, on every attempt, so the saga's retries run out and it compensates. `--arm-throttle`: ARM's
 * token buckets shrunk so the service's calls meet 429 with Retry-After and the saga waits them out.
 *
 * | phase                  | what fails (every attempt)                                      | emulator     |
 * |------------------------|-----------------------------------------------------------------|--------------|
 * | openMailbox            | creating the node's queue: 503                                  | Service Bus  |
 * | ensureArcMachine       | PUT of the Arc machine: 500                                     | ARM          |
 * | grantAccess            | PUT of a role assignment: 500                                   | ARM          |
 * | issueKubeletCredential | GET of the AKS cluster (its API server and version): 500        | ARM          |
 * | verifyReady            | GET of the Node object the kubelet registered: 500              | Kubernetes   |
 * | finalize               | DELETE of the spent bootstrap-token Secret: 500 (5 times, so compensation's delete goes through) | Kubernetes |
 */
import type { ThrottlingOptions } from "../arm-emulator/index.js";
import type { Stack } from "./stack.js";

export const SAGA_PHASES = ["openMailbox", "ensureArcMachine", "grantAccess", "issueKubeletCredential", "verifyReady", "finalize"] as const;
export type SagaPhase = (typeof SAGA_PHASES)[number];
export const isSagaPhase = (s: string): s is SagaPhase => (SAGA_PHASES as readonly string[]).includes(s);

/** Every attempt of a whole run: more than any retry policy makes. */
const ALWAYS = 100_000;

export interface AzureFault {
  phase: SagaPhase;
  /** What the sandbox does, in words (printed by `npm start`). */
  how: string;
  clear(): void;
}

export function injectAzureFault(stack: Pick<Stack, "arm" | "kube" | "sb">, phase: SagaPhase): AzureFault {
  const arm = (method: string, path: RegExp, how: string): AzureFault => {
    const f = stack.arm.faults.inject({ method, path, status: 500, code: "InternalServerError", times: ALWAYS });
    return { phase, how, clear: () => f.clear() };
  };
  const kube = (method: string, path: RegExp, how: string, times = ALWAYS): AzureFault => {
    const f = stack.kube.faults.inject({ method, path, status: 500, times });
    return { phase, how, clear: () => f.clear() };
  };
  switch (phase) {
    case "openMailbox": {
      const f = stack.sb.adminFaults.inject({ method: "PUT", path: /^\/?node-fn-/, status: 503, times: ALWAYS });
      return { phase, how: "Service Bus answers 503 to creating the node's mailbox queue", clear: () => f.clear() };
    }
    case "ensureArcMachine":
      return arm("PUT", /\/Microsoft\.HybridCompute\/machines\//i, "ARM answers 500 to every PUT of an Arc machine");
    case "grantAccess":
      return arm("PUT", /\/providers\/Microsoft\.Authorization\/roleAssignments\//i, "ARM answers 500 to every PUT of a role assignment");
    case "issueKubeletCredential":
      return arm("GET", /\/Microsoft\.ContainerService\/managedClusters\/[^/]+$/i, "ARM answers 500 to every GET of the AKS cluster");
    case "verifyReady":
      return kube("GET", /^\/api\/v1\/nodes\/fn-[0-9a-f]+$/, "the Kubernetes API answers 500 to every GET of the node's Node object");
    case "finalize":
      return kube("DELETE", /\/secrets\/bootstrap-token-/, "the Kubernetes API answers 500 to the first 5 DELETEs of the spent bootstrap token", 5);
  }
}

/** ARM's buckets for `--arm-throttle`: a handful of writes at once, refilled slowly (production: 200, 10/s). */
export const ARM_THROTTLE: ThrottlingOptions = {
  reads: { burst: 20, refillPerSecond: 2 },
  writes: { burst: 2, refillPerSecond: 0.5 },
  deletes: { burst: 2, refillPerSecond: 0.5 },
  globalMultiplier: false,
};
