/**
 * The service's long-lived dependencies, built once per process from the app settings and shared by every trigger
 * (clients are expensive to build and hold connection pools). Rebuilt only if the settings they depend on change,
 * which in practice happens only in tests.
 */
import { createPrivateKey, type KeyObject } from "node:crypto";
import { DefaultAzureCredential } from "@azure/identity";
import { ServiceBusAdministrationClient, ServiceBusClient } from "@azure/service-bus";
import { Mailbox } from "../orchestrations/mailbox/mailbox.js";
import { Registry } from "../orchestrations/registry/registry.js";
import { settings, type Settings } from "../orchestrations/settings.js";
import { ProblemError } from "./http/problem.js";

export interface Services {
  settings: Settings;
  registry: Registry;
  now: () => Date;
  /** The node mailboxes; throws a 503 problem when Service Bus is not configured. */
  mailbox(): Mailbox;
  /** The key that signs step envelopes; throws a 503 problem when not configured. */
  signingKey(): KeyObject;
}

let cached: { key: string; services: Services; ready: Promise<void> } | undefined;

export async function services(): Promise<Services> {
  const s = settings();
  const key = JSON.stringify([s.REGISTRY_CONNECTION, s.REGISTRY_TABLE_ENDPOINT, s.REGISTRY_TABLE_PREFIX, s.AZURE_CLIENT_ID, s.SERVICEBUS_CONNECTION, s.SERVICEBUS_CONNECTION__fullyQualifiedNamespace, s.SERVICEBUS_NODE_NAMESPACE, s.MAILBOX_LISTEN_KEY, s.MAILBOX_SEND_KEY, s.SERVICE_SIGNING_KEY]);
  if (!cached || cached.key !== key) {
    const credential = s.REGISTRY_TABLE_ENDPOINT || s.SERVICEBUS_CONNECTION__fullyQualifiedNamespace ? new DefaultAzureCredential({ managedIdentityClientId: s.AZURE_CLIENT_ID }) : undefined;
    const registry = new Registry(
      s.REGISTRY_CONNECTION ? { connectionString: s.REGISTRY_CONNECTION, prefix: s.REGISTRY_TABLE_PREFIX } : { endpoint: s.REGISTRY_TABLE_ENDPOINT, credential, prefix: s.REGISTRY_TABLE_PREFIX },
    );
    const mailbox = lazy(() => buildMailbox(s, credential));
    const signingKey = lazy(() => {
      if (!s.SERVICE_SIGNING_KEY) throw notConfigured("SERVICE_SIGNING_KEY");
      return createPrivateKey(s.SERVICE_SIGNING_KEY);
    });
    cached = { key, services: { settings: s, registry, now: () => new Date(), mailbox, signingKey }, ready: registry.ensureTables() };
  }
  const current = cached;
  try {
    await current.ready;
  } catch (error) {
    // A failed table check must not poison the process: the next call tries again.
    if (cached === current) cached = undefined;
    throw error;
  }
  return { ...current.services, settings: s };
}

function buildMailbox(s: Settings, credential: DefaultAzureCredential | undefined): Mailbox {
  if (!s.MAILBOX_LISTEN_KEY || !s.MAILBOX_SEND_KEY) throw notConfigured("MAILBOX_LISTEN_KEY and MAILBOX_SEND_KEY");
  let host: string;
  let client: ServiceBusClient;
  let admin: ServiceBusAdministrationClient;
  if (s.SERVICEBUS_CONNECTION) {
    host = /Endpoint=sb:\/\/([^/;]+)/i.exec(s.SERVICEBUS_CONNECTION)![1]!;
    client = new ServiceBusClient(s.SERVICEBUS_CONNECTION);
    admin = new ServiceBusAdministrationClient(s.SERVICEBUS_CONNECTION);
  } else if (s.SERVICEBUS_CONNECTION__fullyQualifiedNamespace && credential) {
    host = s.SERVICEBUS_CONNECTION__fullyQualifiedNamespace;
    client = new ServiceBusClient(host, credential);
    admin = new ServiceBusAdministrationClient(host, credential);
  } else {
    throw notConfigured("SERVICEBUS_CONNECTION");
  }
  return new Mailbox({
    client,
    admin,
    namespaceUri: `sb://${host}`,
    nodeNamespace: s.SERVICEBUS_NODE_NAMESPACE ?? host,
    listenRule: { name: s.MAILBOX_LISTEN_RULE, key: s.MAILBOX_LISTEN_KEY },
    sendRule: { name: s.MAILBOX_SEND_RULE, key: s.MAILBOX_SEND_KEY },
  });
}

function lazy<T>(build: () => T): () => T {
  let value: { v: T } | undefined;
  return () => (value ??= { v: build() }).v;
}

function notConfigured(what: string): ProblemError {
  return new ProblemError(503, "not-configured", "The service is not fully configured", { detail: `${what} is not set.` });
}
