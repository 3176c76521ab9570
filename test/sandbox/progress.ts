/**
 * Live progress lines for `npm start`: per node, the saga's phase changes (service side) and each step attempt the
 * agent runs with its outcome and duration (node side), stamped with the time since that node began enrolling.
 */
import type { FleetEvent } from "./fleet.js";
import type { SandboxNode } from "./sandbox-node.js";

export class ProgressPrinter {
  private readonly phases = new Map<SandboxNode, string>();
  private readonly stepStarted = new Map<string, number>();
  private readonly width: number;

  constructor(
    private readonly startedAt: (node: SandboxNode) => number | undefined,
    private readonly write: (line: string) => void,
    names: readonly string[],
  ) {
    this.width = Math.max(8, ...names.map((n) => n.length));
  }

  handle(e: FleetEvent): void {
    const line = this.format(e);
    if (line === undefined) return;
    const since = this.startedAt(e.node);
    const elapsed = since === undefined ? "" : `+${((Date.now() - since) / 1000).toFixed(1)}s`;
    this.write(`  ${elapsed.padStart(7)}  ${e.node.spec.name.padEnd(this.width)}  ${line}`);
  }

  private format(e: FleetEvent): string | undefined {
    switch (e.type) {
      case "enrolled":
        return `enrolled as ${e.node.nodeId ?? "?"} (HTTP ${e.httpStatus}); agent running`;
      case "note":
        return e.line.startsWith("facts:") ? e.line : undefined;
      case "saga": {
        const phase = e.progress.phase ?? "";
        if (this.phases.get(e.node) === phase) return undefined;
        this.phases.set(e.node, phase);
        if (phase === "runNodeSteps") return "saga › runNodeSteps (the agent runs the plan's steps)";
        if (phase === "compensating") return `saga › compensating: ${e.progress.lastError ?? ""}`;
        if (phase === "done") return "saga › done: node Ready ✓";
        if (phase === "failed") return "saga › node Failed ✗ (everything the saga created was removed)";
        return `saga › ${phase}`;
      }
      case "agent": {
        const ev = e.event;
        if (ev.type === "step-started") {
          this.stepStarted.set(`${e.node.spec.name}/${ev.stepId}/${ev.attempt}`, Date.now());
          return undefined;
        }
        if (ev.type === "step-finished") {
          const started = this.stepStarted.get(`${e.node.spec.name}/${ev.stepId}/${ev.attempt}`);
          const ms = started === undefined ? "" : ` ${Date.now() - started} ms`;
          const mark = ev.outcome === "succeeded" ? "✓" : `✗ ${ev.errorCode ?? "failed"}`;
          return `step ${ev.stepId} (${ev.kind}) attempt ${ev.attempt} ${mark}${ms}`;
        }
        if (ev.type === "envelope-refused") return `agent refused an envelope: ${ev.code}: ${ev.message}`;
        return undefined;
      }
    }
  }
}
