/** A `runAgent` under test: its events collected, waits on them bounded, and a clean stop. */
import { randomBytes } from "node:crypto";
import type { AgentEvent } from "../../src/agent-events.js";
import { enrolAgent, runAgent, type HostSide, type RunAgentOptions } from "../../src/agent.js";
import type { HostCommands } from "../../src/ports.js";
import type { NodeService } from "./node-service.js";
import { HOSTS, scratchRoot, type ScratchRoot } from "./scratch-root.js";
import { testHostSide } from "./test-host-side.js";

/** A host whose programs all succeed; the loop's tests never reach them. */
export const quietHost: HostCommands = { run: async () => ({ code: 0, stdout: "", stderr: "" }) };

export interface RunningAgent {
  events: AgentEvent[];
  /** Resolves with the first event (from now or already seen after `from`) that matches; rejects after `timeoutMs`. */
  waitFor<T extends AgentEvent["type"]>(
    type: T,
    match?: (e: Extract<AgentEvent, { type: T }>) => boolean,
    timeoutMs?: number,
  ): Promise<Extract<AgentEvent, { type: T }>>;
  stop(): Promise<void>;
  done: Promise<void>;
}

export function startAgent(o: { root: string; hostSide?: HostSide } & Partial<Omit<RunAgentOptions, "root" | "signal" | "hostSide">>): RunningAgent {
  const controller = new AbortController();
  const events: AgentEvent[] = [];
  const listeners = new Set<(e: AgentEvent) => void>();
  const done = runAgent({
    host: quietHost,
    hostSide: o.hostSide ?? testHostSide,
    // Short SDK retries: a test that reconnects should not wait for the production back-off.
    serviceBus: { retryOptions: { maxRetries: 3, retryDelayInMs: 100, maxRetryDelayInMs: 500, timeoutInMs: 5_000 } },
    stopGraceMs: 5_000,
    ...o,
    signal: controller.signal,
    onEvent: (e) => {
      events.push(e);
      for (const l of [...listeners]) l(e);
      o.onEvent?.(e);
    },
  });
  return {
    events,
    done,
    waitFor: (type, match = () => true, timeoutMs = 15_000) =>
      new Promise((resolve, reject) => {
        type E = Extract<AgentEvent, { type: typeof type }>;
        const hit = (e: AgentEvent): e is E => e.type === type && match(e as E);
        const seen = events.find(hit);
        if (seen) return resolve(seen);
        const timer = setTimeout(() => {
          listeners.delete(listener);
          reject(new Error(`no ${type} event within ${timeoutMs} ms; saw ${events.map((e) => e.type).join(", ")}`));
        }, timeoutMs);
        const listener = (e: AgentEvent) => {
          if (!hit(e)) return;
          clearTimeout(timer);
          listeners.delete(listener);
          resolve(e);
        };
        listeners.add(listener);
        done.catch((error: unknown) => {
          clearTimeout(timer);
          reject(error as Error);
        });
      }),
    stop: async () => {
      controller.abort();
      await done;
    },
  };
}

/** A fresh machine enrolled with the node service; returns its root and node id. */
export async function enrolledNode(service: NodeService, options: { approval?: boolean } = {}): Promise<{ root: ScratchRoot; nodeId: string }> {
  const root = await scratchRoot({ ...HOSTS.flatcar, "/etc/machine-id": `${randomBytes(16).toString("hex")}\n` });
  const { nodeId } = await enrolAgent({ root: root.dir, url: `${service.url}/api/enrol#${service.issueToken(options)}` });
  return { root, nodeId };
}
