/**
 * One sandbox node: a seeded root directory the real agent treats as "/", a simulated host for its four programs,
 * and the real agent (node-agent/src/agent.ts) enrolling through the real enrolment URL over HTTP and then running
 * its mailbox loop against the Service Bus emulator with the real step executors.
 */
import { mkdtemp, rm } from "node:fs/promises";
import type { NetworkInterfaceInfo } from "node:os";
import * as path from "node:path";
import type { AgentEvent } from "../../node-agent/src/agent-events.js";
import { enrolAgent, runAgent, type EnrolAgentResult, type HostSide } from "../../node-agent/src/agent.js";
import { NoMailboxError } from "../../node-agent/src/mailbox-loop.js";
import type { SystemInfo } from "../../node-agent/src/facts.js";
import type { KubeEmulator } from "../kube-emulator/index.js";
import type { InjectedFailure } from "./failure-injection.js";
import { seedHostRoot, treeSnapshot, type TreeSnapshot } from "./sandbox-root.js";
import { SimulatedHost } from "./simulated-host.js";

export interface NodeSpec {
  /** Host name, also the sandbox root's directory name. */
  name: string;
  immutable: boolean;
  arch: "amd64" | "arm64";
  /** 1..254: the node's (documentation-range) IPv4 address. */
  index: number;
  failure?: InjectedFailure;
}

export interface SandboxNodeOptions {
  spec: NodeSpec;
  /** Parent directory of the node's root. */
  dir: string;
  kube: KubeEmulator;
  hostSide: HostSide;
  /** Extra CA the agent trusts (the artifact mirror's). */
  ca: string;
  onEvent?(node: SandboxNode, event: AgentEvent): void;
  onProgress?(node: SandboxNode, line: string): void;
}

export class SandboxNode {
  readonly spec: NodeSpec;
  readonly host: SimulatedHost;
  readonly events: { at: number; event: AgentEvent }[] = [];
  enrolment: EnrolAgentResult | undefined;
  /** The root as it was after enrolment, before the first step: what a reset must restore. */
  prePlan: TreeSnapshot | undefined;
  /** Set when the agent's run loop ended with an error. */
  error: unknown;
  /** Why the agent ended by itself, when it did: its node has no mailbox any more (failed, offboarded). */
  endedWithoutMailbox: string | undefined;
  private controller = new AbortController();
  private running: Promise<void> | undefined;

  private constructor(
    readonly root: string,
    private readonly o: SandboxNodeOptions,
  ) {
    this.spec = o.spec;
    this.host = new SimulatedHost({
      root,
      hostname: o.spec.name,
      kube: o.kube,
      failures: o.spec.failure?.hostFailures ?? [],
      kubeletCsrNeverApproved: o.spec.failure?.kubeletCsrNeverApproved ?? false,
    });
  }

  static async create(o: SandboxNodeOptions): Promise<SandboxNode> {
    const root = await mkdtemp(path.join(o.dir, `${o.spec.name}-`));
    await seedHostRoot(root, { hostname: o.spec.name, immutable: o.spec.immutable });
    await o.spec.failure?.seed?.(root);
    return new SandboxNode(root, o);
  }

  get nodeId(): string | undefined {
    return this.enrolment?.nodeId;
  }

  /** `flexnode-agent enrol --url <enrolment URL>`, as the real agent does it. */
  async enrol(enrolmentUrl: string): Promise<EnrolAgentResult> {
    this.enrolment = await enrolAgent({
      root: this.root,
      url: enrolmentUrl,
      ca: this.o.ca,
      system: this.system(),
      signal: this.controller.signal,
      onProgress: (line) => this.o.onProgress?.(this, line),
    });
    this.prePlan = await treeSnapshot(this.root);
    return this.enrolment;
  }

  /** `flexnode-agent run`: the mailbox loop, in the background until stop(). */
  start(): void {
    this.running = runAgent({
      root: this.root,
      host: this.host,
      ca: this.o.ca,
      signal: this.controller.signal,
      hostSide: this.o.hostSide,
      system: this.system(),
      onEvent: (event) => {
        this.events.push({ at: Date.now(), event });
        this.o.onEvent?.(this, event);
      },
    }).catch((error: unknown) => {
      // The node failed or was offboarded and its queue deleted: the agent ends on its own, as on a real host.
      if (error instanceof NoMailboxError) this.endedWithoutMailbox = error.message;
      else this.error = error;
    });
  }

  /** Stops the agent (SIGTERM's path: receiver and connections closed) and waits for the simulated kubelet. */
  async stop(): Promise<void> {
    this.controller.abort();
    await this.running;
    await this.host.settle();
  }

  /**
   * `systemctl restart flexnode-agent`: what an operator does on the machine after `flexnode retry` when the agent
   * ended because its node had failed (exit 6, which the unit does not restart by itself).
   */
  async restart(): Promise<void> {
    await this.stop();
    this.controller = new AbortController();
    this.endedWithoutMailbox = undefined;
    this.start();
  }

  async remove(): Promise<void> {
    await rm(this.root, { recursive: true, force: true });
  }

  /** What this machine's kernel would report: the agent reads architecture, release and addresses from here. */
  private system(): SystemInfo {
    const { spec } = this;
    const eth0: NetworkInterfaceInfo = {
      address: `192.0.2.${spec.index}`,
      netmask: "255.255.255.0",
      family: "IPv4",
      mac: `02:00:00:00:00:${spec.index.toString(16).padStart(2, "0")}`,
      internal: false,
      cidr: `192.0.2.${spec.index}/24`,
    };
    return {
      hostname: () => spec.name,
      arch: () => (spec.arch === "amd64" ? "x64" : "arm64"),
      release: () => (spec.immutable ? "6.6.54-flatcar" : "6.8.0-45-generic"),
      cpus: () => 4,
      totalmem: () => 8 * 1024 ** 3,
      networkInterfaces: () => ({ eth0: [eth0] }),
    };
  }
}
