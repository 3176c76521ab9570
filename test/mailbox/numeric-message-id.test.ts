/**
 * A Service Bus message id that looks like a number: the host sends trigger metadata strings as strings and
 * @azure/functions JSON-parses them, so `MessageId: "42"` reaches the function as the number 42. The node-results
 * trigger must still name the message (the rejected-results copy carries its original id).
 */
import { AzureSASCredential } from "@azure/core-auth";
import { ServiceBusClient } from "@azure/service-bus";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REJECTED_RESULTS_QUEUE, RESULTS_QUEUE } from "../../orchestrations/clients/mailbox/mailbox.js";
import { mailboxRules, newNode, startApp, type TestApp } from "../function-app/index.js";
import { startServiceBusTriggers, type RunningTriggers } from "../functions-host/index.js";
import { DEFAULT_RULE, ServiceBusEmulator, type RunningEmulator } from "../servicebus-emulator/index.js";

let emulator: ServiceBusEmulator;
let sb: RunningEmulator;
let app: TestApp;
let triggers: RunningTriggers;
let sender: ServiceBusClient;
let nodeId: string;

beforeAll(async () => {
  emulator = new ServiceBusEmulator({
    rules: [DEFAULT_RULE, { ...mailboxRules.listen, rights: ["Listen"] }, { ...mailboxRules.send, rights: ["Send"] }],
    queues: [{ name: RESULTS_QUEUE, maxDeliveryCount: 5 }, { name: REJECTED_RESULTS_QUEUE }],
  });
  sb = await emulator.start();
  app = await startApp({ serviceBus: { connectionString: sb.connectionString(), nodeNamespace: sb.credentialNamespace } });
  await app.createPool("edge");
  const enrolled = (await app.enrol(newNode(), await app.createToken("edge"))).json as { nodeId: string; mailbox: { namespace: string; sendSas: string } };
  nodeId = enrolled.nodeId;
  sender = new ServiceBusClient(enrolled.mailbox.namespace, new AzureSASCredential(enrolled.mailbox.sendSas));
  triggers = startServiceBusTriggers(app.host);
  await app.simulator.runUntilIdle();
});
afterAll(async () => {
  await triggers?.close();
  await sender?.close();
  await app?.close();
  await emulator?.stop();
});

describe("node-results trigger and a numeric-looking message id", () => {
  it("names the message by its id when it moves a bad result aside", async () => {
    await sender.createSender(RESULTS_QUEUE).sendMessages({ body: { version: 1, nodeId, stepId: "x" }, messageId: "42", contentType: "application/json" });
    const deadline = Date.now() + 8000;
    while (emulator.inspect.messages(REJECTED_RESULTS_QUEUE).length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    const [rejected] = emulator.inspect.messages(REJECTED_RESULTS_QUEUE);
    expect(rejected).toMatchObject({ messageId: "42", applicationProperties: { originalMessageId: "42" } });
  });
});
