/**
 * A fleet of sandbox nodes on one stack: creates their roots, enrols them through the enrolment URL (concurrently, as
 * machines booting at once would), runs their agents, and waits until every saga has finished. Live progress comes
 * from both sides: the saga's custom status (phase, step, attempt) and the agent's own events.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import type { AgentEvent } from "../../node-agent/src/agent-events.js";
import type { HostSide } from "../../node-agent/src/agent.js";
import type { InstanceStatus } from "../durable/index.js";
import { SandboxNode, type NodeSpec } from "./sandbox-node.js";
import type { Stack } from "./stack.js";

export interface SagaProgress {
  phase?: string;
  step?: string;
  attempt?: number;
  lastError?: string;
}

export type FleetEvent =
  | { type: "enrolled"; node: SandboxNode; httpStatus: number }
  | { type: "saga"; node: SandboxNode; progress: SagaProgress; runtimeStatus: string }
  | { type: "agent"; node: SandboxNode; event: AgentEvent }
  | { type: "note"; node: SandboxNode; line: string };

export interface NodeOutcome {
  node: SandboxNode;
  status: "Ready" | "Failed" | "Unfinished";
  saga: InstanceStatus | undefined;
  /** From enrolment to the saga's end. */
  elapsedMs: number;
}

export interface Fleet {
  dir: string;
  nodes: SandboxNode[];
  /** When each node started enrolling. */
  startedAt: Map<SandboxNode, number>;
  /** Resolves when every node's saga is terminal (or `timeoutMs` passed). */
  settle(timeoutMs: number): Promise<NodeOutcome[]>;
  /** Stops every agent; with `removeRoots`, deletes the sandbox roots too. */
  stop(options?: { removeRoots?: boolean }): Promise<void>;
}

export interface FleetOptions {
  stack: Stack;
  specs: NodeSpec[];
  enrolmentUrl: string;
  hostSide: HostSide;
  /** Parent of the temp directory holding every node's root (default: the OS temp dir). */
  baseDir?: string;
  onEvent?(event: FleetEvent): void;
}

export async function startFleet(o: FleetOptions): Promise<Fleet> {
  const dir = await mkdtemp(path.join(o.baseDir ?? tmpdir(), "flexnode-sandbox-"));
  const emit = o.onEvent ?? (() => undefined);
  const nodes = await Promise.all(
    o.specs.map((spec) =>
      SandboxNode.create({
        spec,
        dir,
        kube: o.stack.kube,
        hostSide: o.hostSide,
        ca: o.stack.artifacts.ca,
        onEvent: (node, event) => emit({ type: "agent", node, event }),
        onProgress: (node, line) => emit({ type: "note", node, line }),
      }),
    ),
  );
  const startedAt = new Map<SandboxNode, number>();
  const finishedAt = new Map<string, number>();
  const byId = new Map<string, SandboxNode>();
  const simulator = o.stack.harness.simulator;
  const lastShown = new Map<string, string>();
  const unsubscribe = simulator.onChange((instanceId) => {
    const node = byId.get(instanceId);
    const status = simulator.getStatus(instanceId);
    if (!node || !status) return;
    const progress = (status.customStatus ?? {}) as SagaProgress;
    const key = JSON.stringify([status.runtimeStatus, progress.phase, progress.step, progress.attempt, progress.lastError]);
    if (lastShown.get(instanceId) === key) return;
    lastShown.set(instanceId, key);
    if (["Completed", "Failed", "Terminated"].includes(status.runtimeStatus) && !finishedAt.has(instanceId)) finishedAt.set(instanceId, Date.now());
    emit({ type: "saga", node, progress, runtimeStatus: status.runtimeStatus });
  });

  try {
    await Promise.all(
      nodes.map(async (node) => {
        startedAt.set(node, Date.now());
        const enrolment = await node.enrol(o.enrolmentUrl);
        byId.set(enrolment.nodeId, node);
        emit({ type: "enrolled", node, httpStatus: enrolment.httpStatus });
        node.start();
      }),
    );
  } catch (error) {
    unsubscribe();
    await Promise.all(nodes.map((n) => n.stop()));
    await rm(dir, { recursive: true, force: true, maxRetries: 5 }).catch(() => undefined);
    throw error;
  }

  return {
    dir,
    nodes,
    startedAt,
    settle: async (timeoutMs) => {
      const deadline = Date.now() + timeoutMs;
      return Promise.all(
        nodes.map(async (node): Promise<NodeOutcome> => {
          const id = node.nodeId!;
          let saga: InstanceStatus | undefined;
          try {
            saga = await simulator.waitFor(id, { timeoutMs: Math.max(1, deadline - Date.now()) });
          } catch {
            saga = simulator.getStatus(id);
          }
          const output = saga?.output as { status?: string } | null | undefined;
          const status =
            saga?.runtimeStatus === "Completed" && output?.status === "Ready"
              ? "Ready"
              : saga && ["Completed", "Failed", "Terminated"].includes(saga.runtimeStatus)
                ? "Failed"
                : "Unfinished";
          return { node, status, saga, elapsedMs: (finishedAt.get(id) ?? Date.now()) - startedAt.get(node)! };
        }),
      );
    },
    stop: async ({ removeRoots = false } = {}) => {
      unsubscribe();
      await Promise.all(nodes.map((n) => n.stop()));
      if (removeRoots) await rm(dir, { recursive: true, force: true, maxRetries: 5 });
    },
  };
}
