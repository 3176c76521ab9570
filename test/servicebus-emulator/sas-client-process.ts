/**
 * Test fixture run as a child process by auth.test.ts: a node agent's client construction, unchanged from
 * production (namespace host + AzureSASCredential, so TLS), sending to and receiving from one queue.
 * Env: SB_NAMESPACE (host:port), SB_TOKEN, SB_QUEUE. Prints one JSON line: { body } or { error }.
 */
import { AzureSASCredential } from "@azure/core-auth";
import { ServiceBusClient } from "@azure/service-bus";

const client = new ServiceBusClient(process.env["SB_NAMESPACE"] ?? "", new AzureSASCredential(process.env["SB_TOKEN"] ?? ""), {
  retryOptions: { maxRetries: 0, timeoutInMs: 5000 },
});
const queue = process.env["SB_QUEUE"] ?? "";
try {
  await client.createSender(queue).sendMessages({ body: "over-tls" });
  const [message] = await client.createReceiver(queue, { receiveMode: "receiveAndDelete" }).receiveMessages(1, { maxWaitTimeInMs: 3000 });
  process.stdout.write(`${JSON.stringify({ body: message?.body as unknown })}\n`);
} catch (error) {
  process.stdout.write(`${JSON.stringify({ error: error instanceof Error ? error.message : String(error) })}\n`);
} finally {
  await client.close();
}
