/**
 * A node's mailbox: one Service Bus queue per node (`node-<nodeId>`), into which the saga sends signed step envelopes,
 * plus the shared `node-results` queue the node answers on. The node gets SAS tokens minted here: Listen scoped to
 * its own queue, Send scoped to `node-results`, nothing else. Queues are managed through the Service Bus data plane
 * (the ATOM management API), not ARM: the ARM write budget belongs to Arc machines and role grants.
 */
import { isRestError } from "@azure/core-rest-pipeline";
import type { ServiceBusAdministrationClient, ServiceBusClient } from "@azure/service-bus";
import { findSecrets } from "../../../contract/secrets.js";
import type { StepEnvelope } from "../../../contract/step-envelope.js";
import { mintSas } from "./sas.js";

export const RESULTS_QUEUE = "node-results";
/**
 * Not `node-results-…`: a SAS token is valid for every resource its URI is a prefix of (Microsoft's SAS page), so a
 * name that extends `node-results` would be open to every node's Send token.
 */
export const REJECTED_RESULTS_QUEUE = "rejected-node-results";
export const queueFor = (nodeId: string): string => `node-${nodeId}`;
/** The node a queue is the mailbox of, if it is one (the results queues are not). */
export const nodeOfQueue = (queue: string): string | undefined => /^node-(fn-[0-9a-f]{24})$/i.exec(queue)?.[1]?.toLowerCase();

export interface SasRule {
  name: string;
  key: string;
}

export interface MailboxOptions {
  client: ServiceBusClient;
  admin: ServiceBusAdministrationClient;
  /** `sb://<namespace host>`: the base of the resource URIs tokens are scoped to. */
  namespaceUri: string;
  /** What the agent passes as its ServiceBusClient namespace (normally the namespace host name). */
  nodeNamespace: string;
  /** Namespace-level rule with Listen only; its key signs the nodes' receive tokens. */
  listenRule: SasRule;
  /** Namespace-level rule with Send only; its key signs the nodes' result tokens. */
  sendRule: SasRule;
  /**
   * Token lifetime. The SDK re-sends a SAS credential's token only every 45 minutes per link, so a token must outlive
   * that; the agent refreshes at half-life over the node API.
   */
  sasLifetimeMs?: number;
  queue?: Partial<NodeQueueSettings>;
}

export interface NodeQueueSettings {
  /** Long enough for a quick step; the agent renews the lock for long ones. */
  lockDuration: string;
  /** A step envelope the agent cannot even settle this often is poison: dead-letter it. */
  maxDeliveryCount: number;
  /** Envelopes expire on their own; a stale one in the queue is dead-lettered, not delivered. */
  defaultMessageTimeToLive: string;
  deadLetteringOnMessageExpiration: boolean;
}

const DEFAULT_QUEUE: NodeQueueSettings = {
  lockDuration: "PT1M",
  maxDeliveryCount: 5,
  defaultMessageTimeToLive: "PT2H",
  deadLetteringOnMessageExpiration: true,
};
export const DEFAULT_SAS_LIFETIME_MS = 2 * 3600_000;

export interface NodeMailboxCredentials {
  namespace: string;
  queue: string;
  resultsQueue: string;
  /** Listen on `queue` only. */
  listenSas: string;
  /** Send to `resultsQueue` only. */
  sendSas: string;
  expiresAt: string;
  /** When the agent should ask for fresh tokens (half-life). */
  refreshAfter: string;
}

export class SecretInEnvelopeError extends Error {
  constructor(readonly paths: string[]) {
    super(`refusing to send an envelope carrying secret-shaped values at ${paths.join(", ")}; send a secret reference instead`);
    this.name = "SecretInEnvelopeError";
  }
}

/**
 * The namespace has no room for another queue: 10,000 queues and topics per Basic/Standard namespace, 1,000 per
 * Premium messaging unit, and every onboarded node keeps its queue.
 */
export class MailboxQuotaError extends Error {
  constructor(detail: string) {
    super(
      `the Service Bus namespace has no room for another node queue (10,000 queues per Basic/Standard namespace, 1,000 per Premium messaging unit; each node keeps one until it is removed): ${detail}`,
    );
    this.name = "MailboxQuotaError";
  }
}

export class Mailbox {
  private readonly queueSettings: NodeQueueSettings;
  private readonly sasLifetimeMs: number;

  constructor(private readonly options: MailboxOptions) {
    this.queueSettings = { ...DEFAULT_QUEUE, ...options.queue };
    this.sasLifetimeMs = options.sasLifetimeMs ?? DEFAULT_SAS_LIFETIME_MS;
    if (this.sasLifetimeMs <= 45 * 60_000) throw new RangeError("node SAS tokens must outlive the SDK's 45-minute token renewal");
  }

  /**
   * Creates the node's queue; an existing queue is success (saga retries and replays call this again). Only the 409
   * that says the queue exists is: a 409 for a conflicting operation in progress (SubCode 40901, e.g. the queue's
   * delete still running) means it may not exist, and is thrown for the saga to try again.
   */
  async open(nodeId: string): Promise<{ queue: string; created: boolean }> {
    const queue = queueFor(nodeId);
    try {
      await this.options.admin.createQueue(queue, this.queueSettings);
      return { queue, created: true };
    } catch (error) {
      if (isRestError(error) && error.code === "MessageEntityAlreadyExistsError") return { queue, created: false };
      if (isRestError(error) && error.code === "QuotaExceededError") throw new MailboxQuotaError(error.message);
      throw error;
    }
  }

  /** The nodes that have a mailbox queue in the namespace (the sweeper compares them with the registry). */
  async nodesWithQueues(): Promise<string[]> {
    const nodes: string[] = [];
    for await (const queue of this.options.admin.listQueues()) {
      const nodeId = nodeOfQueue(queue.name);
      if (nodeId) nodes.push(nodeId);
    }
    return nodes;
  }

  /** Deletes the node's queue and whatever it still holds; an absent queue is success. */
  async close(nodeId: string): Promise<{ queue: string; deleted: boolean }> {
    const queue = queueFor(nodeId);
    try {
      await this.options.admin.deleteQueue(queue);
      return { queue, deleted: true };
    } catch (error) {
      if (isRestError(error) && (error.statusCode === 404 || error.code === "MessageEntityNotFoundError")) return { queue, deleted: false };
      throw error;
    }
  }

  /**
   * Sends a signed envelope to the node. The message id is the step attempt, and the message lives no longer than
   * the envelope is valid. Anything secret-shaped is refused: secrets travel only over the node API, once.
   */
  async send(envelope: StepEnvelope): Promise<void> {
    const findings = findSecrets(envelope);
    if (findings.length > 0) throw new SecretInEnvelopeError(findings.map((f) => f.path));
    const sender = this.options.client.createSender(queueFor(envelope.nodeId));
    try {
      const ttl = Date.parse(envelope.expiresAt) - Date.parse(envelope.issuedAt);
      await sender.sendMessages({
        body: envelope,
        contentType: "application/json",
        messageId: `${envelope.stepId}/${envelope.attempt}`,
        subject: envelope.kind,
        timeToLive: Math.max(1_000, ttl),
      });
    } finally {
      await sender.close();
    }
  }

  /** Fresh node tokens: Listen on its own queue, Send on the results queue, valid for the configured lifetime. */
  credentialsFor(nodeId: string, now: Date): NodeMailboxCredentials {
    const queue = queueFor(nodeId);
    const expiresAt = new Date(now.getTime() + this.sasLifetimeMs);
    const uri = (entity: string) => `${this.options.namespaceUri.replace(/\/+$/, "")}/${entity}`;
    return {
      namespace: this.options.nodeNamespace,
      queue,
      resultsQueue: RESULTS_QUEUE,
      listenSas: mintSas({ resourceUri: uri(queue), keyName: this.options.listenRule.name, key: this.options.listenRule.key, expiresAt }),
      sendSas: mintSas({ resourceUri: uri(RESULTS_QUEUE), keyName: this.options.sendRule.name, key: this.options.sendRule.key, expiresAt }),
      expiresAt: expiresAt.toISOString(),
      refreshAfter: new Date(now.getTime() + this.sasLifetimeMs / 2).toISOString(),
    };
  }

  /**
   * Sets a rejected result's digest aside with its reason. The Node programming model cannot dead-letter a triggering
   * message on GA bindings, so the results trigger completes it and records here what the dead-letter queue would
   * carry — the reason fields — with the digest (sha256, size) in place of the body: anyone can send garbage to
   * `node-results`, and a copy of each would be storage an attacker controls.
   */
  async quarantineResult(digest: { reason: string; description: string; sha256: string; size: number; nodeId?: string }, messageId?: string): Promise<void> {
    const sender = this.options.client.createSender(REJECTED_RESULTS_QUEUE);
    try {
      await sender.sendMessages({
        body: digest,
        contentType: "application/json",
        messageId,
        applicationProperties: {
          DeadLetterReason: digest.reason,
          DeadLetterErrorDescription: digest.description.slice(0, 1024),
          originalMessageId: messageId ?? null,
        },
      });
    } finally {
      await sender.close();
    }
  }
}
