/**
 * Orphans: objects in the emulators that no Ready node owns, counted from the emulators' own state against the
 * registry's list of Ready nodes. A finished fleet must have none: a Failed saga removes what it created, and a Ready
 * node keeps exactly its machine, its role assignments, its Node object and its mailbox.
 */
import type { Registry } from "../../orchestrations/clients/registry/registry.js";
import type { ArmEmulator } from "../../test/arm-emulator/index.js";
import type { KubeEmulator } from "../../test/kube-emulator/index.js";
import type { InProcessMailbox } from "./in-process-mailbox.js";

export interface OrphanCount {
  arcMachines: number;
  roleAssignments: number;
  bootstrapTokenSecrets: number;
  kubeNodes: number;
  mailboxQueues: number;
  total: number;
}

export async function readyNodeIds(registry: Registry, pool: string): Promise<Set<string>> {
  const ids = new Set<string>();
  let continuationToken: string | undefined;
  do {
    const page = await registry.nodes.list({ pool, status: "Ready", maxPageSize: 1000, continuationToken });
    for (const n of page.items) ids.add(n.nodeId);
    continuationToken = page.continuationToken;
  } while (continuationToken);
  return ids;
}

export function countOrphans(ready: ReadonlySet<string>, emulators: { arm: ArmEmulator; kube: KubeEmulator; mailbox: InProcessMailbox }): OrphanCount {
  const machines = emulators.arm.inspect.machines();
  const readyPrincipals = new Set(machines.filter((m) => ready.has(m.name)).map((m) => m.principalId));
  const kube = emulators.kube.inspect();
  const counts = {
    arcMachines: machines.filter((m) => !ready.has(m.name)).length,
    roleAssignments: emulators.arm.inspect.roleAssignments().filter((g) => !readyPrincipals.has(g.principalId)).length,
    // A Ready node's bootstrap token is revoked at finalize, so every remaining one is an orphan.
    bootstrapTokenSecrets: kube.secrets.filter((s) => s.name.startsWith("bootstrap-token-")).length,
    kubeNodes: kube.nodes.filter((n) => !ready.has(n.name)).length,
    mailboxQueues: [...emulators.mailbox.queues].filter((q) => !ready.has(q.replace(/^node-/, ""))).length,
  };
  return { ...counts, total: Object.values(counts).reduce((a, b) => a + b, 0) };
}
