/**
 * The node mailboxes without Service Bus: the service's own Mailbox (same SAS minting, same secret check on every
 * envelope) whose queue management and sends stay in the process. An envelope goes straight to the node's in-process
 * agent. What this leaves out is the broker round trip (AMQP, CBS, peek-lock), which costs wall time on this machine
 * but no ARM requests, so it does not change the fleet's ARM throughput.
 */
import { ServiceBusAdministrationClient, ServiceBusClient } from "@azure/service-bus";
import { findSecrets } from "../../contract/secrets.js";
import type { StepEnvelope } from "../../contract/step-envelope.js";
import { Mailbox, SecretInEnvelopeError, queueFor, type SasRule } from "../../orchestrations/clients/mailbox/mailbox.js";

export interface InProcessMailboxOptions {
  listenRule: SasRule;
  sendRule: SasRule;
  /** Receives every envelope sent (the node's agent). */
  deliver(envelope: StepEnvelope): void;
  /** Waits out the modelled latency of a call (emulated time); default none. */
  latency?: { send(): Promise<void>; manage(): Promise<void> };
}

// Never contacted: the clients only satisfy the base class; every method that would use them is overridden.
const UNUSED_CONNECTION = "Endpoint=sb://in-process.invalid/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=unused";

export class InProcessMailbox extends Mailbox {
  /** Queues that exist now (what Service Bus would list). */
  readonly queues = new Set<string>();
  readonly quarantined: { reason: string; description: string }[] = [];
  sends = 0;

  constructor(private readonly o: InProcessMailboxOptions) {
    super({
      client: new ServiceBusClient(UNUSED_CONNECTION),
      admin: new ServiceBusAdministrationClient(UNUSED_CONNECTION),
      namespaceUri: "sb://in-process.invalid",
      nodeNamespace: "in-process.invalid",
      listenRule: o.listenRule,
      sendRule: o.sendRule,
    });
  }

  override async open(nodeId: string): Promise<{ queue: string; created: boolean }> {
    await this.o.latency?.manage();
    const queue = queueFor(nodeId);
    const created = !this.queues.has(queue);
    this.queues.add(queue);
    return { queue, created };
  }

  override async close(nodeId: string): Promise<{ queue: string; deleted: boolean }> {
    await this.o.latency?.manage();
    const queue = queueFor(nodeId);
    return { queue, deleted: this.queues.delete(queue) };
  }

  override async send(envelope: StepEnvelope): Promise<void> {
    const findings = findSecrets(envelope);
    if (findings.length > 0) throw new SecretInEnvelopeError(findings.map((f) => f.path));
    if (!this.queues.has(queueFor(envelope.nodeId))) throw new Error(`queue ${queueFor(envelope.nodeId)} does not exist`);
    await this.o.latency?.send();
    this.sends++;
    this.o.deliver(envelope);
  }

  override quarantineResult(digest: { reason: string; description: string }): Promise<void> {
    this.quarantined.push({ reason: digest.reason, description: digest.description });
    return Promise.resolve();
  }
}
