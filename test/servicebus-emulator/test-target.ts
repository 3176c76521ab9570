/**
 * Test support: the namespace an integration test talks to. By default an in-process emulator on an ephemeral
 * port; with SERVICEBUS_TEST_CONNECTION_STRING set (a real namespace whose key has Manage rights), that namespace
 * instead. Tests create their queues through the administration client, uniquely named, and the target deletes them.
 */
import { randomBytes } from "node:crypto";
import type { AzureSASCredential } from "@azure/core-auth";
import { ServiceBusAdministrationClient, ServiceBusClient, type CreateQueueOptions, type ServiceBusClientOptions } from "@azure/service-bus";
import type { Clock } from "../support/index.js";
import { DEFAULT_RULE, type SharedAccessRule } from "./access-rules.js";
import { ServiceBusEmulator } from "./emulator.js";
import { signSasToken } from "./sas-token.js";

const external = process.env["SERVICEBUS_TEST_CONNECTION_STRING"] ?? "";

/** True when the suite targets a real namespace rather than the emulator. */
export const TARGETS_EXTERNAL_NAMESPACE = external !== "";

/** Reason shown for tests skipped against a real namespace. */
export const EMULATOR_ONLY =
  "emulator only: needs the delivery log, the emulator clock, raw AMQP access or its Listen-/Send-only rules (SERVICEBUS_TEST_CONNECTION_STRING is set)";

/** The emulator's rules: the Microsoft emulator's default Manage rule plus the narrow rules nodes get tokens from. */
export const RULES = {
  manage: DEFAULT_RULE,
  listen: { name: "node-listen", key: "bm9kZS1saXN0ZW4ta2V5", rights: ["Listen"] },
  send: { name: "node-send", key: "bm9kZS1zZW5kLWtleQ==", rights: ["Send"] },
} as const satisfies Record<string, SharedAccessRule>;

/** Lock durations tests may use: the emulator accepts short ones, the service requires 5 s or more. */
export const SHORT_LOCK_MS = TARGETS_EXTERNAL_NAMESPACE ? 5000 : 1200;

export interface TestTarget {
  /** Undefined against a real namespace. */
  readonly emulator: ServiceBusEmulator | undefined;
  readonly connectionString: string;
  /** `sb://host[:port]`, the prefix of the audiences the SDK puts tokens for. */
  readonly endpoint: string;
  readonly manageRule: { name: string; key: string };
  readonly admin: ServiceBusAdministrationClient;
  /** A client authenticated by the connection string's key. Closed by `close()`. */
  client(options?: ServiceBusClientOptions): ServiceBusClient;
  /** A client authenticated by a SAS credential, the way a node agent connects. Closed by `close()`. */
  sasClient(credential: AzureSASCredential, options?: ServiceBusClientOptions): ServiceBusClient;
  /** Creates a uniquely named queue (prefix + random suffix); deleted by `close()`. */
  queue(prefix: string, options?: CreateQueueOptions): Promise<string>;
  /** A SAS token for `sb://host/<resource>` signed with the rule's key, valid for `lifetimeSeconds` from `nowMs`. */
  token(rule: { name: string; key: string }, resource: string, lifetimeSeconds: number, nowMs?: number): string;
  close(): Promise<void>;
}

export interface OpenTargetOptions {
  /** The emulator's clock (ignored for a real namespace). */
  clock?: Clock;
}

const NO_RETRIES: ServiceBusClientOptions = { retryOptions: { maxRetries: 0, timeoutInMs: 10_000 } };

export async function openTarget(options: OpenTargetOptions = {}): Promise<TestTarget> {
  let emulator: ServiceBusEmulator | undefined;
  let connectionString = external;
  let credentialNamespace: string;
  let endpoint: string;
  let manageRule: { name: string; key: string };
  let admin: ServiceBusAdministrationClient;
  if (TARGETS_EXTERNAL_NAMESPACE) {
    const fields = new Map(
      external
        .split(";")
        .filter(Boolean)
        .map((part) => [part.slice(0, part.indexOf("=")), part.slice(part.indexOf("=") + 1)]),
    );
    const host = /^sb:\/\/([^/]+)/.exec(fields.get("Endpoint") ?? "")?.[1];
    if (!host) throw new Error("SERVICEBUS_TEST_CONNECTION_STRING has no sb:// Endpoint");
    credentialNamespace = host;
    endpoint = `sb://${host}`;
    manageRule = { name: fields.get("SharedAccessKeyName") ?? "", key: fields.get("SharedAccessKey") ?? "" };
    admin = new ServiceBusAdministrationClient(connectionString);
  } else {
    emulator = new ServiceBusEmulator({ rules: Object.values(RULES), clock: options.clock });
    const running = await emulator.start();
    connectionString = running.connectionString();
    credentialNamespace = running.credentialNamespace;
    endpoint = running.endpoint;
    manageRule = RULES.manage;
    admin = new ServiceBusAdministrationClient(connectionString, { ...running.adminClientOptions(), retryOptions: { maxRetries: 0 } });
  }
  const clients: ServiceBusClient[] = [];
  const queues: string[] = [];
  const track = (client: ServiceBusClient) => {
    clients.push(client);
    return client;
  };
  return {
    emulator,
    connectionString,
    endpoint,
    manageRule,
    admin,
    client: (clientOptions) => track(new ServiceBusClient(connectionString, { ...NO_RETRIES, ...clientOptions })),
    sasClient: (credential, clientOptions) => track(new ServiceBusClient(credentialNamespace, credential, { ...NO_RETRIES, ...clientOptions })),
    async queue(prefix, queueOptions) {
      const name = `${prefix}-${randomBytes(4).toString("hex")}`;
      await admin.createQueue(name, queueOptions);
      queues.push(name);
      return name;
    },
    token: (rule, resource, lifetimeSeconds, nowMs = Date.now()) =>
      signSasToken({
        resourceUri: `${endpoint}/${resource}`,
        keyName: rule.name,
        key: rule.key,
        expiresAtSeconds: Math.floor(nowMs / 1000) + lifetimeSeconds,
      }),
    async close() {
      await Promise.allSettled(clients.map((c) => c.close()));
      await Promise.allSettled(queues.map((q) => admin.deleteQueue(q)));
      await emulator?.stop();
      // An exception inside the emulator shows up in a test only as an SDK timeout; fail loudly instead.
      const bugs = emulator?.log.of("error", (e) => e.source === "emulator") ?? [];
      if (bugs.length > 0) throw new Error(`the emulator raised ${bugs.length} internal error(s):\n${bugs.map((b) => b.message).join("\n")}`);
    },
  };
}

/** Polls `probe` until it returns a value other than undefined, at most `timeoutMs`. */
export async function eventually<T>(probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 5000, intervalMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() >= deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(intervalMs);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
