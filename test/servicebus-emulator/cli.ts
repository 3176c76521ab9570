/**
 * The emulator as a standalone process for the local dev loop:
 *   npx tsx test/servicebus-emulator/cli.ts [--port 5672] [--host 127.0.0.1] [--config queues.json] [--ca-file ca.pem]
 * Prints the connection string (the Microsoft emulator's default key name and key, so code runs unchanged against
 * either) and where the CA for the HTTPS administration API is; stops on SIGINT/SIGTERM.
 */
import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { loadEmulatorConfig } from "./emulator-config.js";
import { ServiceBusEmulator } from "./emulator.js";

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: "string", default: "5672" },
      host: { type: "string", default: "127.0.0.1" },
      config: { type: "string" },
      "ca-file": { type: "string" },
    },
    strict: true,
  });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port must be 0-65535, got ${values.port}`);
  const config = values.config === undefined ? {} : loadEmulatorConfig(values.config);
  const emulator = new ServiceBusEmulator(config);
  const running = await emulator.start({ host: values.host, port });
  const caFile = values["ca-file"] ?? path.join(tmpdir(), `servicebus-emulator-${running.port}-ca.pem`);
  writeFileSync(caFile, running.ca);

  console.log(`Service Bus emulator listening on ${running.endpoint} (AMQP, AMQP over TLS, HTTPS administration API)`);
  console.log(`SERVICEBUS_CONNECTION_STRING=${running.connectionString()}`);
  console.log(`SERVICEBUS_ADMIN_ENDPOINT=https://${running.tlsNamespace}/`);
  console.log(`SERVICEBUS_CA_FILE=${caFile}`);
  console.log("Trust the CA for the administration client (tlsOptions: { ca }) or a child process (NODE_EXTRA_CA_CERTS).");
  for (const queue of emulator.inspect.queues()) console.log(`queue ${queue.name}`);

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`${signal}: stopping`);
    emulator.stop().then(
      () => console.log("stopped"),
      (error: unknown) => {
        console.error(error);
        process.exitCode = 1;
      },
    );
  };
  process.once("SIGINT", () => stop("SIGINT"));
  process.once("SIGTERM", () => stop("SIGTERM"));
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
