/**
 * End-to-end wiring: the sandbox stack (test/sandbox/stack.ts) on ephemeral ports, sharing the vitest globalSetup's
 * Azurite under a table prefix of its own, with the demo pool created through the admin API; and helpers that read
 * what the emulators hold about one node.
 */
import { inject } from "vitest";
import { RESULTS_QUEUE, REJECTED_RESULTS_QUEUE } from "../../orchestrations/clients/mailbox/mailbox.js";
import { startStack, type SandboxNode, type Stack } from "../sandbox/index.js";

export async function startE2eStack(): Promise<{ stack: Stack; serviceLog: string[] }> {
  const serviceLog: string[] = [];
  const stack = await startStack({ storageConnectionString: inject("azuriteConnectionString"), log: (line) => serviceLog.push(line) });
  try {
    await stack.createDemoPool(100);
  } catch (error) {
    await stack.close();
    throw error;
  }
  return { stack, serviceLog };
}

/** Everything the emulators hold that belongs to one node (by its node id, host name, or its Arc identity). */
export function objectsOf(stack: Stack, node: SandboxNode) {
  const id = node.nodeId!;
  const machines = stack.arm.inspect.machines().filter((m) => m.name === id || m.tags["flexnode-node"] === id);
  const principals = new Set(machines.map((m) => m.principalId));
  const kube = stack.kube.inspect();
  return {
    machines,
    roleAssignments: stack.arm.inspect.roleAssignments().filter((r) => principals.has(r.principalId) || r.name.includes(id)),
    queues: stack.sb.inspect.queues().filter((q) => q.name === `node-${id}`),
    bootstrapSecrets: kube.secrets.filter((s) => s.type === "bootstrap.kubernetes.io/token" && s.labels["flexnode.dev/node-id"] === id),
    kubeNodes: kube.nodes.filter((n) => n.name === id || n.name === node.spec.name),
  };
}

/** Queues other than the service's own results queues. */
export const nodeQueues = (stack: Stack): string[] =>
  stack.sb.inspect
    .queues()
    .map((q) => q.name)
    .filter((n) => n !== RESULTS_QUEUE && n !== REJECTED_RESULTS_QUEUE);

/** The agent's step attempts as `stepId#attempt outcome`, in order. */
export const stepsOf = (node: SandboxNode): string[] =>
  node.events.flatMap(({ event: e }) => (e.type === "step-finished" ? [`${e.stepId}#${e.attempt} ${e.outcome}${e.errorCode ? ` ${e.errorCode}` : ""}`] : []));
