import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { ServiceBusAdministrationClient, ServiceBusClient } from "@azure/service-bus";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, "../..");
const CLI = path.join(HERE, "cli.ts");

interface RunningCli {
  child: ChildProcessWithoutNullStreams;
  output: () => string;
  exited: Promise<number | null>;
}

function startCli(args: string[]): RunningCli {
  const child = spawn(process.execPath, ["--import", "tsx", CLI, ...args], { cwd: REPO });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { child, output: () => output, exited };
}

describe("cli.ts", () => {
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), "sb-emulator-cli-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("starts with queues from a config file, serves the SDK and the admin client, and stops on SIGTERM", async () => {
    const config = path.join(dir, "queues.json");
    writeFileSync(
      config,
      JSON.stringify({
        queues: [
          { name: "node-results", lockDuration: "PT30S" },
          { name: "node-1", maxDeliveryCount: 3 },
        ],
      }),
    );
    const cli = startCli(["--port", "0", "--config", config, "--ca-file", path.join(dir, "ca.pem")]);
    try {
      await expect.poll(() => cli.output(), { timeout: 15_000, interval: 50 }).toContain("SERVICEBUS_CA_FILE=");
      const connectionString = /SERVICEBUS_CONNECTION_STRING=(\S+)/.exec(cli.output())?.[1] ?? "";
      expect(connectionString).toMatch(
        /^Endpoint=sb:\/\/127\.0\.0\.1:\d+;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true$/,
      );
      const ca = readFileSync(/SERVICEBUS_CA_FILE=(\S+)/.exec(cli.output())![1]!, "utf8");

      const client = new ServiceBusClient(connectionString, { retryOptions: { maxRetries: 0 } });
      try {
        await client.createSender("node-results").sendMessages({ body: "hello from the dev loop" });
        const [message] = await client.createReceiver("node-results", { receiveMode: "receiveAndDelete" }).receiveMessages(1, { maxWaitTimeInMs: 5000 });
        expect(message?.body).toBe("hello from the dev loop");
      } finally {
        await client.close();
      }
      const admin = new ServiceBusAdministrationClient(connectionString, { tlsOptions: { ca }, retryOptions: { maxRetries: 0 } });
      expect(await admin.getQueue("node-1")).toMatchObject({ maxDeliveryCount: 3 });
      expect((await admin.getQueue("node-results")).lockDuration).toBe("PT30S");

      cli.child.kill("SIGTERM");
      expect(await cli.exited).toBe(0);
      expect(cli.output()).toContain("stopped");
    } finally {
      cli.child.kill("SIGKILL");
    }
  });

  it("refuses an invalid config with the offending field and a non-zero exit", async () => {
    const config = path.join(dir, "bad.json");
    writeFileSync(config, JSON.stringify({ queues: [{ name: "q", lockDuration: "5 minutes" }] }));
    const cli = startCli(["--port", "0", "--config", config]);
    try {
      expect(await cli.exited).toBe(1);
      expect(cli.output()).toContain("queues.0.lockDuration");
    } finally {
      cli.child.kill("SIGKILL");
    }
  });
});
