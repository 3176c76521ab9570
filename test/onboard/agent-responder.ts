/**
 * The agent's side of the saga, scripted: receives the node's envelopes with its own SAS token, verifies them with the
 * service key, acts out the step (fetching the bootstrap kubeconfig over the signed node API, and "joining" the
 * kubelet in the Kubernetes emulator when the kubelet would), and answers with a signed result — or fails, stays
 * silent, or answers twice, as the script says.
 */
import { createPublicKey, type KeyObject } from "node:crypto";
import { AzureSASCredential } from "@azure/core-auth";
import { ServiceBusClient, type ServiceBusReceiver, type ServiceBusSender } from "@azure/service-bus";
import { importPublicKey } from "../../contract/keys.js";
import { signNodeRequest } from "../../contract/node-request.js";
import { verifyStepEnvelope, type StepEnvelope } from "../../contract/step-envelope.js";
import { buildStepResult } from "../../contract/step-result.js";
import type { NodeMailboxCredentials } from "../../orchestrations/clients/mailbox/mailbox.js";
import type { TestApp } from "../function-app/index.js";
import type { KubeEmulator } from "../kube-emulator/index.js";

/** succeedWithoutEffect: reports success but changes nothing the cluster can see (a kubelet that never comes up). */
/** `crashAfterEffect`: the step's effect happens (a secret is taken), then the agent dies before it answers. */
/** `failVerbose`: a retryable failure with a long message of characters JSON escapes (3,072 characters, 10,240 as JSON). */
export type StepBehaviour = "succeed" | "succeedWithoutEffect" | "fail" | "failRetryable" | "failVerbose" | "silent" | "crashAfterEffect" | "duplicate";
export type Script = (envelope: StepEnvelope) => StepBehaviour;

export class AgentResponder {
  pending = 0;
  resultsSent = 0;
  readonly seen: { sagaId: string; stepId: string; attempt: number; behaviour: StepBehaviour }[] = [];
  /** Every verified envelope, params included (what the node was asked to write). */
  readonly envelopes: StepEnvelope[] = [];
  readonly errors: unknown[] = [];
  private client: ServiceBusClient | undefined;
  private receiver: ServiceBusReceiver | undefined;
  /** One connection for results, as an agent keeps it: a connection per result would cost a CBS handshake each. */
  private results: ServiceBusSender | undefined;
  private resultsClient: ServiceBusClient | undefined;
  private bootstrapToken: string | undefined;
  private kubeletLabels: Record<string, string> = {};

  constructor(
    private readonly o: {
      app: TestApp;
      kube: KubeEmulator;
      nodeId: string;
      privateKey: KeyObject;
      servicePublicKey: KeyObject | string;
      mailbox: NodeMailboxCredentials;
      script?: Script;
      /**
       * What the kubelet step reports as the node its client certificate names (`kubeletNode`, as the real agent's
       * waitFor does): default the node itself; null reports nothing, as an agent from before the field.
       */
      kubeletNode?: string | null;
    },
  ) {}

  start(): void {
    this.client = new ServiceBusClient(this.o.mailbox.namespace, new AzureSASCredential(this.o.mailbox.listenSas));
    this.receiver = this.client.createReceiver(this.o.mailbox.queue);
    this.receiver.subscribe(
      {
        processMessage: async (m) => {
          this.pending++;
          try {
            await this.handle(m.body as StepEnvelope);
          } catch (error) {
            this.errors.push(error);
          } finally {
            this.pending--;
          }
        },
        processError: async () => undefined,
      },
      { autoCompleteMessages: true },
    );
  }

  async close(): Promise<void> {
    await this.receiver?.close();
    await this.client?.close();
    await this.results?.close();
    await this.resultsClient?.close();
  }

  private async handle(raw: StepEnvelope): Promise<void> {
    const key = this.o.servicePublicKey;
    const servicePublicKey = typeof key === "string" ? importPublicKey(key) : key.type === "private" ? createPublicKey(key) : key;
    const envelope = verifyStepEnvelope(raw, { servicePublicKey, nodeId: this.o.nodeId, now: new Date() });
    const behaviour = (this.o.script ?? (() => "succeed"))(envelope);
    this.seen.push({ sagaId: envelope.sagaId, stepId: envelope.stepId, attempt: envelope.attempt, behaviour });
    this.envelopes.push(envelope);
    if (behaviour === "silent") return;
    if (behaviour === "crashAfterEffect") return this.act(envelope);
    const startedAt = new Date();
    if (behaviour === "succeed" || behaviour === "duplicate") await this.act(envelope);
    else if (behaviour === "succeedWithoutEffect" && envelope.kind === "fetchSecret") await this.act(envelope);
    const failed = behaviour === "fail" || behaviour === "failRetryable" || behaviour === "failVerbose";
    const result = buildStepResult(
      {
        nodeId: this.o.nodeId,
        sagaId: envelope.sagaId,
        stepId: envelope.stepId,
        attempt: envelope.attempt,
        startedAt,
        finishedAt: new Date(),
        manifestDigest: `sha256:${"0".repeat(64)}`,
        ...(failed
          ? {
              outcome: "failed" as const,
              error: {
                code: "ScriptedFailure",
                message: behaviour === "failVerbose" ? '"\\\u0001'.repeat(1024) : `scripted failure of ${envelope.stepId}`,
                retryable: behaviour !== "fail",
              },
            }
          : { outcome: "succeeded" as const, output: this.outputOf(envelope) }),
      },
      { privateKey: this.o.privateKey },
    );
    this.resultsClient ??= new ServiceBusClient(this.o.mailbox.namespace, new AzureSASCredential(this.o.mailbox.sendSas));
    this.results ??= this.resultsClient.createSender(this.o.mailbox.resultsQueue);
    const copies = behaviour === "duplicate" ? 2 : 1;
    for (let i = 0; i < copies; i++)
      await this.results.sendMessages({ body: result, messageId: `${envelope.stepId}/${envelope.attempt}/${i}`, contentType: "application/json" });
    this.resultsSent += copies;
  }

  private outputOf(envelope: StepEnvelope): Record<string, string> {
    if (envelope.stepId !== "kubelet-client-certificate") return {};
    const kubeletNode = this.o.kubeletNode === undefined ? this.o.nodeId : this.o.kubeletNode;
    return kubeletNode === null ? {} : { kubeletNode };
  }

  /** What a real agent's executor would leave behind that the cluster can see. */
  private async act(envelope: StepEnvelope): Promise<void> {
    // The kubelet unit the plan writes carries the labels the kubelet registers its Node with.
    const nodeLabels = /--node-labels=([^\s"\\]+)/.exec(JSON.stringify(envelope.params))?.[1];
    if (nodeLabels) this.kubeletLabels = Object.fromEntries(nodeLabels.split(",").map((kv) => kv.split("=", 2) as [string, string]));
    if (envelope.kind === "fetchSecret") {
      const path = `/api/node/secrets/${String(envelope.params.secretRef)}`;
      const headers = await signNodeRequest({ method: "POST", url: path, body: "" }, { privateKey: this.o.privateKey, now: new Date() });
      const res = await this.o.app.call("POST", path, { headers });
      if (res.status !== 200) throw new Error(`secret fetch answered ${res.status}: ${res.body}`);
      this.bootstrapToken = /token:\s*(\S+)/.exec((res.json as { value: string }).value)?.[1];
    }
    if (envelope.stepId === "kubelet-client-certificate") {
      if (!this.bootstrapToken) throw new Error("the kubelet has no bootstrap token");
      this.o.kube.joinNode(this.o.nodeId, { bootstrapToken: this.bootstrapToken, labels: this.kubeletLabels });
    }
  }
}
