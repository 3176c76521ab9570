/** The Service Bus side of the loop: the node's two connections, sending a result, and settling a message. */
import { AzureSASCredential } from "@azure/core-auth";
import { ServiceBusClient, type ServiceBusReceiver, type ServiceBusSender } from "@azure/service-bus";
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
  sendClient: ServiceBusClient;
  receiver: ServiceBusReceiver;
  sender: ServiceBusSender;
  close(): Promise<void>;
}

export function connect(credentials: MailboxCredentials, o: Pick<MailboxLoopOptions, "serviceBus" | "maxStepMs" | "lockMarginMs" | "onEvent">): Connection {
  // One connection per credential: a SAS credential carries a single token, and the Listen token is scoped to this
  // node's queue while the Send token is scoped to the results queue.
  const listen = new AzureSASCredential(credentials.listenSas);
  const send = new AzureSASCredential(credentials.sendSas);
  const listenClient = new ServiceBusClient(credentials.namespace, listen, o.serviceBus);
  const sendClient = new ServiceBusClient(credentials.namespace, send, o.serviceBus);
  const receiver = listenClient.createReceiver(credentials.queue, {
    receiveMode: "peekLock",
    maxAutoLockRenewalDurationInMs: o.maxStepMs + (o.lockMarginMs ?? LOCK_MARGIN_MS),
  });
  const sender = sendClient.createSender(credentials.resultsQueue);
  return {
    credentials,
    listen,
    send,
    listenClient,
    sendClient,
    receiver,
    sender,
    close: async () => {
      const steps = [() => receiver.close(), () => sender.close(), () => listenClient.close(), () => sendClient.close()];
      for (const step of steps) {
        try {
          await step();
        } catch (error) {
          o.onEvent({ type: "error", where: "close", message: (error as Error).message });
        }
      }
    },
  };
}

export async function sendResult(connection: Connection, result: StepResult): Promise<void> {
  await connection.sender.sendMessages({
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
