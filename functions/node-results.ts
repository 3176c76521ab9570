/**
 * Service Bus trigger on `node-results`: a node's signed step result becomes an event on that node's saga (see
 * orchestrations/use-cases/node-results.ts). A permanently invalid message is completed; within its sender's quota
 * it is audited and its digest (not its body) goes to `rejected-node-results` with the reason. A transient failure
 * throws so the broker redelivers (and, past the queue's max delivery count, dead-letters it). A result raised on its
 * saga joins the onboarding's trace, and its step's duration is recorded (orchestrations/observability/node-steps.ts).
 */
import { app, type InvocationContext } from "@azure/functions";
import type { DurableClient } from "durable-functions";
import { RESULTS_QUEUE } from "../orchestrations/clients/mailbox/mailbox.js";
import { handleNodeResult } from "../orchestrations/use-cases/node-results.js";
import type { ServiceProvider, Services } from "../orchestrations/services.js";
import { isMissingInstance } from "../orchestrations/clients/workflow-client.js";
import { observeNodeStep } from "../orchestrations/observability/node-steps.js";
import { durableClientInput, durableClientOf } from "./durable-client.js";

export async function nodeResult(svc: Services, message: unknown, client: DurableClient, context: InvocationContext): Promise<void> {
  // The library JSON-parses string metadata, so a numeric-looking MessageId arrives as a number: take any scalar as text.
  const rawId = context.triggerMetadata?.messageId;
  const messageId = typeof rawId === "string" || typeof rawId === "number" || typeof rawId === "bigint" ? String(rawId) : undefined;
  const startedAt = new Date();
  const outcome = await handleNodeResult(message, {
    registry: svc.registry,
    raiseEvent: async (instanceId, eventName, data) => {
      // A finished saga answers 410, which the client accepts. A 404 is a late result only if the saga is truly gone
      // (purged or never started): confirmed, so a wrong route or event name can never pass for one.
      try {
        await client.raiseEvent(instanceId, eventName, data);
      } catch (error) {
        if (await sagaIsGone(client, instanceId)) return;
        throw error;
      }
    },
  });
  if (outcome.kind === "rejected") {
    const { digest } = outcome;
    const subject = digest.nodeId ?? "unknown senders";
    if (outcome.recorded) {
      // A claimed node is only what an unverified message says: worth a look, never proof of who sent it.
      const claimed = digest.claimedNodeId ? `, claims to be from ${digest.claimedNodeId}` : "";
      context.warn(
        `rejected result ${messageId ?? "(no id)"}: ${digest.reason}: ${digest.description} (sha256 ${digest.sha256}, ${digest.size} bytes${claimed})`,
      );
      await svc.mailbox().quarantineResult(digest, messageId);
    } else if (outcome.firstOverQuota) {
      context.warn(`rejected results from ${subject} are over their quota; further ones in this window are completed unrecorded`);
    }
    return;
  }
  if (outcome.kind === "raised") observeNodeStep(outcome.result, startedAt);
  context.log(`result ${messageId ?? "(no id)"} for ${outcome.nodeId}: ${outcome.kind} ${outcome.event}`);
}

async function sagaIsGone(client: DurableClient, instanceId: string): Promise<boolean> {
  try {
    await client.getStatus(instanceId);
    return false;
  } catch (error) {
    return isMissingInstance(error);
  }
}

export function registerNodeResults(services: ServiceProvider): void {
  app.serviceBusQueue("nodeResults", {
    connection: "SERVICEBUS_CONNECTION",
    queueName: RESULTS_QUEUE,
    extraInputs: [durableClientInput],
    handler: async (message, context) => nodeResult(await services(), message, durableClientOf(context), context),
  });
}
