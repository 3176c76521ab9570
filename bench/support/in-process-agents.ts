/**
 * Scripted node agents inside the benchmark process, on emulated time. Each envelope is verified with the service key
 * (the real contract), acted out where the cluster or the service can see it (the bootstrap kubeconfig fetched over
 * the signed node API, the kubelet joining in the Kubernetes emulator) and answered, after the step's modelled
 * duration, with a result signed by the node key and handed to the service's real `nodeResults` trigger function —
 * the Service Bus hop between them is the only part left out.
 */
import type { KeyObject } from "node:crypto";
import { signNodeRequest } from "../../contract/node-request.js";
import { verifyStepEnvelope, type StepEnvelope } from "../../contract/step-envelope.js";
import { buildStepResult } from "../../contract/step-result.js";
import type { FunctionsHost, HttpResult } from "../../test/functions-host/index.js";
import type { KubeEmulator } from "../../test/kube-emulator/index.js";
import type { Clock } from "../../test/support/index.js";
import { MinHeap } from "./min-heap.js";

interface Identity {
  privateKey: KeyObject;
  servicePublicKey: KeyObject;
  bootstrapToken?: string;
}

type Due = { kind: "answer"; envelope: StepEnvelope; receivedAt: number; dueAt: number } | { kind: "kubeletReady"; nodeId: string };

export interface InProcessAgentsOptions {
  host: FunctionsHost;
  kube: KubeEmulator;
  clock: Clock;
  /** Emulated duration of a step, from envelope received to result sent. */
  stepDurationMs(envelope: StepEnvelope): number;
  /** How long after joining the kubelet reports Ready (its Node is NotReady until then). */
  kubeletReadyAfterMs: number;
  /** Signed node API call (the fetchSecret step). */
  call(method: string, path: string, headers: Record<string, string>): Promise<HttpResult>;
}

const MANIFEST_DIGEST = `sha256:${"0".repeat(64)}`;

export class InProcessAgents {
  readonly errors: unknown[] = [];
  results = 0;
  private readonly nodes = new Map<string, Identity>();
  private readonly pending = new MinHeap<Due>();

  constructor(private readonly o: InProcessAgentsOptions) {}

  register(nodeId: string, privateKey: KeyObject, servicePublicKey: KeyObject): void {
    this.nodes.set(nodeId, { privateKey, servicePublicKey });
  }

  /** A node that finished onboarding stops listening; a late envelope for it is dropped, as an absent agent would. */
  retire(nodeId: string): void {
    this.nodes.delete(nodeId);
  }

  /** The mailbox's delivery: the agent has the envelope now and answers after the step's duration. */
  receive(envelope: StepEnvelope): void {
    const now = this.o.clock.now();
    const dueAt = now + this.o.stepDurationMs(envelope);
    this.pending.push(dueAt, { kind: "answer", envelope, receivedAt: now, dueAt });
  }

  nextDueAt(): number | undefined {
    return this.pending.peekKey();
  }

  get inProgress(): number {
    return this.pending.size;
  }

  /** Does everything due by now, in due order: answers steps, kubelets turning Ready. Returns how many things it did. */
  async deliverDue(): Promise<number> {
    const due = this.pending.popUntil(this.o.clock.now());
    for (const d of due) {
      try {
        if (d.kind === "answer") await this.answer(d);
        else if (this.nodes.has(d.nodeId)) this.o.kube.setNodeReady(d.nodeId, true);
      } catch (error) {
        this.errors.push(error);
      }
    }
    return due.length;
  }

  private async answer(p: Extract<Due, { kind: "answer" }>): Promise<boolean> {
    const node = this.nodes.get(p.envelope.nodeId);
    if (!node) return false;
    const envelope = verifyStepEnvelope(p.envelope, { servicePublicKey: node.servicePublicKey, nodeId: p.envelope.nodeId, now: new Date() });
    await this.act(envelope, node);
    const result = buildStepResult(
      {
        nodeId: envelope.nodeId,
        sagaId: envelope.sagaId,
        stepId: envelope.stepId,
        attempt: envelope.attempt,
        startedAt: new Date(p.receivedAt),
        finishedAt: new Date(Math.max(p.dueAt, p.receivedAt)),
        manifestDigest: MANIFEST_DIGEST,
        outcome: "succeeded",
        output: {},
      },
      { privateKey: node.privateKey },
    );
    await this.o.host.invoke(
      "nodeResults",
      { string: JSON.stringify(result) },
      { triggerMetadata: { messageId: `${envelope.stepId}/${envelope.attempt}`, deliveryCount: 1 } },
    );
    this.results++;
    return true;
  }

  /** What the real executors leave behind that the service or the cluster can see. */
  private async act(envelope: StepEnvelope, node: Identity): Promise<void> {
    if (envelope.kind === "fetchSecret") {
      const path = `/api/node/secrets/${String(envelope.params.secretRef)}`;
      const headers = await signNodeRequest({ method: "POST", url: path, body: "" }, { privateKey: node.privateKey, now: new Date() });
      const res = await this.o.call("POST", path, { ...headers });
      if (res.status !== 200) throw new Error(`secret fetch for ${envelope.nodeId} answered ${res.status}: ${res.body}`);
      node.bootstrapToken = /token:\s*(\S+)/.exec((res.json as { value: string }).value)?.[1];
    }
    if (envelope.stepId === "kubelet-client-certificate") {
      if (!node.bootstrapToken) throw new Error(`the kubelet of ${envelope.nodeId} has no bootstrap token`);
      const joined = this.o.kube.joinNode(envelope.nodeId, { bootstrapToken: node.bootstrapToken, labels: {} });
      if (!joined.joined) throw new Error(`node ${envelope.nodeId} could not join: ${joined.reason}`);
      // A kubelet with its certificate registers at once but is Ready only once its runtime and network are up.
      if (this.o.kubeletReadyAfterMs > 0) {
        this.o.kube.setNodeReady(envelope.nodeId, false);
        this.pending.push(this.o.clock.now() + this.o.kubeletReadyAfterMs, { kind: "kubeletReady", nodeId: envelope.nodeId });
      }
    }
  }
}
