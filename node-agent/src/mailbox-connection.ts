/**
 * The Service Bus side of the loop: the node's receiving connection, sending a result, and settling a message.
 *
 * A namespace takes 5,000 concurrent AMQP connections (Basic/Standard), the service's own included, so a resident
 * agent holds one: the receiver's. Results go out on a connection opened for the send and closed after it (a SAS
 * credential carries one token, and the Send token is scoped to the results queue, so the receiver's connection cannot
 * carry them).
 */
import { AzureSASCredential } from "@azure/core-auth";
import { ServiceBusClient, type ServiceBusMessage, type ServiceBusReceiver } from "@azure/service-bus";
import type { MailboxCredentials } from "../../contract/mailbox-credentials.js";
import type { StepResult } from "../../contract/step-result.js";
import type { StepRef } from "./agent-events.js";
import type { MailboxLoopOptions } from "./mailbox-loop-options.js";
import { messageOf } from "./message-of.js";

const LOCK_MARGIN_MS = 5 * 60_000;
const SETTLE_TIMEOUT_MS = 90_000;

export interface Connection {
  credentials: MailboxCredentials;
  listen: AzureSASCredential;
  send: AzureSASCredential;
  listenClient: ServiceBusClient;
  receiver: ServiceBusReceiver;
  /** Sends one message to the results queue on a connection of its own, closed once the send is settled. */
  sendToResults(message: ServiceBusMessage): Promise<void>;
  close(): Promise<void>;
}

export function connect(credentials: MailboxCredentials, o: Pick<MailboxLoopOptions, "serviceBus" | "maxStepMs" | "lockMarginMs" | "onEvent">): Connection {
  const listen = new AzureSASCredential(credentials.listenSas);
  const send = new AzureSASCredential(credentials.sendSas);
  const listenClient = new ServiceBusClient(credentials.namespace, listen, o.serviceBus);
  const receiver = listenClient.createReceiver(credentials.queue, {
    receiveMode: "peekLock",
    maxAutoLockRenewalDurationInMs: o.maxStepMs + (o.lockMarginMs ?? LOCK_MARGIN_MS),
  });
  const sending = new Set<ServiceBusClient>();
  const closeQuietly = async (where: string, step: () => Promise<void>) => {
    try {
      await step();
    } catch (error) {
      o.onEvent({ type: "error", where, message: (error as Error).message });
    }
  };
  return {
    credentials,
    listen,
    send,
    listenClient,
    receiver,
    sendToResults: async (message) => {
      const client = new ServiceBusClient(credentials.namespace, send, o.serviceBus);
      sending.add(client);
      try {
        const sender = client.createSender(credentials.resultsQueue);
        await sender.sendMessages(message);
      } finally {
        sending.delete(client);
        await closeQuietly("close", () => client.close());
      }
    },
    close: async () => {
      await closeQuietly("close", () => receiver.close());
      await closeQuietly("close", () => listenClient.close());
      for (const client of [...sending]) await closeQuietly("close", () => client.close());
    },
  };
}

export async function sendResult(connection: Connection, result: StepResult): Promise<void> {
  await connection.sendToResults({
    body: result,
    contentType: "application/json",
    messageId: `${result.nodeId}/${result.stepId}/${result.attempt}`.slice(0, 128),
  });
}

/**
 * Settles without ever blocking the loop for long: a settlement that fails or goes unanswered (the lock was lost, the
 * link it arrived on was re-attached meanwhile) leaves the message to come back when its lock lapses, and the
 * remembered result answers it then. Throwing instead would make the SDK abandon it, which can hang the same way.
 */
export async function settle(o: Pick<MailboxLoopOptions, "settleTimeoutMs" | "onEvent">, operation: () => Promise<void>, ref?: StepRef): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeoutMs = o.settleTimeoutMs ?? SETTLE_TIMEOUT_MS;
  const pending = operation();
  try {
    await Promise.race([
      pending,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no settlement confirmation within ${timeoutMs} ms`)), timeoutMs))),
    ]);
  } catch (error) {
    pending.catch(() => undefined);
    const which = ref ? ` of ${ref.stepId} (attempt ${ref.attempt})` : "";
    o.onEvent({
      type: "error",
      where: "settle",
      message: `the message${which} was not settled (${messageOf(error) || (error as { code?: string }).code || "unknown error"}); it will be redelivered and answered with the same result`,
    });
  } finally {
    clearTimeout(timer);
  }
}
