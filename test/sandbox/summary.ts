/**
 * What a sandbox run did, read from the emulators themselves (not from the service's own account of it): the Arc
 * machines, role assignments, mailbox queues and Kubernetes objects that exist, the ARM calls the service made (the
 * ARM emulator's request log), and each node's outcome. Printed for people and as one JSON line for machines.
 */
import { BUILT_IN_ROLES } from "../arm-emulator/index.js";
import { RESULTS_QUEUE, REJECTED_RESULTS_QUEUE } from "../../orchestrations/clients/mailbox/mailbox.js";
import type { NodeOutcome } from "./fleet.js";
import type { Stack } from "./stack.js";

export interface NodeSummary {
  name: string;
  nodeId: string | undefined;
  os: string;
  status: NodeOutcome["status"];
  seconds: number;
  steps: number;
  error?: { code: string; message: string };
  removed?: string[];
}

export interface SandboxSummary {
  ok: boolean;
  nodes: NodeSummary[];
  ready: number;
  failed: number;
  azure: { arcMachines: string[]; roleAssignments: { id: string; role: string; scope: string }[]; mailboxQueues: string[] };
  kubernetes: { nodes: { name: string; ready: string | undefined }[]; bootstrapTokens: number };
  armCalls: { total: number; throttled: number; byRoute: Record<string, number> };
  wallSeconds: number;
}

export function summarize(stack: Stack, outcomes: NodeOutcome[], wallMs: number): SandboxSummary {
  const nodes = outcomes.map((o): NodeSummary => {
    const output = (o.saga?.output ?? {}) as { error?: { code: string; message: string }; removed?: string[] };
    return {
      name: o.node.spec.name,
      nodeId: o.node.nodeId,
      os: `${o.node.spec.immutable ? "flatcar" : "ubuntu"}/${o.node.spec.arch}`,
      status: o.status,
      seconds: round(o.elapsedMs / 1000),
      steps: o.node.events.filter((e) => e.event.type === "step-finished").length,
      ...(o.status === "Failed" && output.error ? { error: output.error, removed: output.removed ?? [] } : {}),
      ...(o.status === "Unfinished"
        ? { error: { code: "Unfinished", message: `saga still ${o.saga?.runtimeStatus ?? "absent"}: ${JSON.stringify(o.saga?.customStatus ?? null)}` } }
        : {}),
    };
  });
  const byRoute: Record<string, number> = {};
  let throttled = 0;
  for (const e of stack.arm.requests.entries) {
    const key = `${e.method} ${e.route ?? e.path} ${e.status}`;
    byRoute[key] = (byRoute[key] ?? 0) + 1;
    if (e.throttled) throttled++;
  }
  const kube = stack.kube.inspect();
  const ready = nodes.filter((n) => n.status === "Ready").length;
  return {
    ok: nodes.length > 0 && ready === nodes.length,
    nodes,
    ready,
    failed: nodes.length - ready,
    azure: {
      arcMachines: stack.arm.inspect.machines().map((m) => m.id),
      roleAssignments: stack.arm.inspect.roleAssignments().map((r) => ({ id: r.id, role: r.roleDefinitionId.split("/").pop()!, scope: r.scope })),
      mailboxQueues: stack.sb.inspect
        .queues()
        .map((q) => q.name)
        .filter((n) => n !== RESULTS_QUEUE && n !== REJECTED_RESULTS_QUEUE)
        .sort(),
    },
    kubernetes: {
      nodes: kube.nodes.map((n) => ({ name: n.name, ready: n.ready })),
      bootstrapTokens: kube.secrets.filter((s) => s.type === "bootstrap.kubernetes.io/token").length,
    },
    armCalls: {
      total: stack.arm.requests.entries.length,
      throttled,
      byRoute: Object.fromEntries(Object.entries(byRoute).sort(([a], [b]) => a.localeCompare(b))),
    },
    wallSeconds: round(wallMs / 1000),
  };
}

const round = (x: number): number => Math.round(x * 10) / 10;

/** Long lists shortened for the console (the JSON line has them whole). */
function few(items: string[], max = 6): string[] {
  return items.length <= max ? items : [...items.slice(0, max - 1), `… and ${items.length - max + 1} more`];
}

const ROLE_NAMES: Record<string, string> = Object.fromEntries(Object.entries(BUILT_IN_ROLES).map(([name, guid]) => [guid, name]));

export function formatSummary(s: SandboxSummary): string[] {
  const lines: string[] = [];
  lines.push("", `Summary: ${s.ready} Ready, ${s.failed} Failed of ${s.nodes.length} node(s) in ${s.wallSeconds} s (wall time, including start-up)`);
  const shown = s.nodes.length <= 12 ? s.nodes : [...s.nodes.filter((n) => n.status !== "Ready"), ...s.nodes.filter((n) => n.status === "Ready").slice(0, 5)];
  for (const n of shown) {
    lines.push(
      `  ${n.status === "Ready" ? "✓" : "✗"} ${n.name.padEnd(14)} ${String(n.nodeId ?? "-").padEnd(24)} ${n.os.padEnd(13)} ${n.status.padEnd(10)} ${n.seconds} s, ${n.steps} step attempts`,
    );
    if (n.error) lines.push(`      ${n.error.code}: ${n.error.message}`);
  }
  if (shown.length < s.nodes.length) lines.push(`  … and ${s.nodes.length - shown.length} more Ready node(s)`);
  lines.push("", "Azure objects that exist now (emulated ARM and Service Bus):");
  lines.push(`  Arc machines (${s.azure.arcMachines.length}):`, ...few(s.azure.arcMachines).map((id) => `    ${id}`));
  lines.push(
    `  Role assignments (${s.azure.roleAssignments.length}):`,
    ...few(s.azure.roleAssignments.map((r) => `${ROLE_NAMES[r.role] ?? r.role} at ${r.scope}`)).map((l) => `    ${l}`),
  );
  lines.push(`  Mailbox queues (${s.azure.mailboxQueues.length}): ${few(s.azure.mailboxQueues).join(", ") || "-"}`);
  lines.push(
    `Kubernetes (emulated API server): ${s.kubernetes.nodes.length} node(s) ${few(s.kubernetes.nodes.map((n) => `${n.name} (Ready=${n.ready ?? "?"})`)).join(", ")}; bootstrap tokens left: ${s.kubernetes.bootstrapTokens}`,
  );
  lines.push(`ARM calls made by the service: ${s.armCalls.total} (${s.armCalls.throttled} throttled)`);
  for (const [route, count] of Object.entries(s.armCalls.byRoute)) lines.push(`  ${String(count).padStart(4)} × ${route}`);
  return lines;
}
