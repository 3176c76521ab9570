/**
 * The Service Bus extension's part of the host: for every registered `serviceBusTrigger` function, a peek-lock receiver
 * on its queue (connection from the app setting the binding names) that invokes the function per message and settles
 * it as the extension does with autoCompleteMessages: complete on success, abandon on a throw (the broker redelivers
 * and, past max delivery count, dead-letters). Trigger metadata carries the fields the extension provides.
 */
import { ServiceBusClient, type ServiceBusReceivedMessage, type ServiceBusReceiver } from "@azure/service-bus";
import type { LogRecord } from "./core.js";
import { InvocationError, type FunctionsHost } from "./host.js";

export interface ServiceBusTriggerOptions {
  /** Resolves a binding's `connection` setting name to a connection string (default: process.env). */
  connectionString?: (settingName: string) => string | undefined;
  maxConcurrentCalls?: number;
}

export interface RunningTriggers {
  /** Invocations so far: function name, message id, outcome. */
  invocations: { functionName: string; messageId: string | undefined; outcome: "completed" | "abandoned"; error?: string; logs: LogRecord[] }[];
  close(): Promise<void>;
}

export function startServiceBusTriggers(host: FunctionsHost, options: ServiceBusTriggerOptions = {}): RunningTriggers {
  const resolve = options.connectionString ?? ((name: string) => process.env[name]);
  const clients: ServiceBusClient[] = [];
  const receivers: ServiceBusReceiver[] = [];
  const invocations: RunningTriggers["invocations"] = [];
  for (const fn of host.registry.byTriggerType("serviceBusTrigger")) {
    const setting = String(fn.trigger.connection);
    const connection = resolve(setting);
    if (!connection) throw new Error(`function ${fn.metadata.name}: app setting '${setting}' is not set`);
    const client = new ServiceBusClient(connection);
    const receiver = client.createReceiver(String(fn.trigger.queueName), { receiveMode: "peekLock" });
    clients.push(client);
    receivers.push(receiver);
    receiver.subscribe(
      {
        processMessage: async (message) => {
          const name = fn.metadata.name;
          try {
            const result = await host.invoke(
              name,
              { string: typeof message.body === "string" ? message.body : JSON.stringify(message.body) },
              { triggerMetadata: metadataOf(message) },
            );
            invocations.push({ functionName: name, messageId: idOf(message), outcome: "completed", logs: result.logs });
          } catch (error) {
            invocations.push({
              functionName: name,
              messageId: idOf(message),
              outcome: "abandoned",
              error: error instanceof Error ? error.message : String(error),
              logs: error instanceof InvocationError ? error.logs : [],
            });
            throw error;
          }
        },
        processError: () => Promise.resolve(),
      },
      { autoCompleteMessages: true, maxConcurrentCalls: options.maxConcurrentCalls ?? 4 },
    );
  }
  return {
    invocations,
    close: async () => {
      await Promise.all(receivers.map((r) => r.close()));
      await Promise.all(clients.map((c) => c.close()));
    },
  };
}

const idOf = (m: ServiceBusReceivedMessage): string | undefined => (m.messageId === undefined ? undefined : String(m.messageId));

function metadataOf(m: ServiceBusReceivedMessage): Record<string, unknown> {
  return {
    MessageId: idOf(m),
    DeliveryCount: m.deliveryCount,
    EnqueuedTimeUtc: m.enqueuedTimeUtc?.toISOString(),
    SequenceNumber: m.sequenceNumber?.toNumber(),
    ContentType: m.contentType,
    Subject: m.subject,
    ApplicationProperties: m.applicationProperties ?? {},
  };
}
