/**
 * The composition root: builds every client the service uses from the app settings, once per process (clients are
 * expensive to build and hold connection pools), and hands them to the triggers as a ServiceProvider. The app's
 * entry passes the settings of the process; tests and the local sandbox pass their own parts (emulator transports,
 * a credential) — the same objects, pointed elsewhere. Clients are rebuilt only when the settings they depend on
 * change, which in practice happens only in tests.
 */
import { createPrivateKey } from "node:crypto";
import type { TokenCredential } from "@azure/core-auth";
import type { HttpClient } from "@azure/core-rest-pipeline";
import { DefaultAzureCredential } from "@azure/identity";
import { ServiceBusAdministrationClient, ServiceBusClient } from "@azure/service-bus";
import { ArmClients } from "../orchestrations/clients/arm/arm-clients.js";
import { ArmPacer } from "../orchestrations/clients/arm/write-pacer.js";
import { droppedLifecycleEvents, eventGridLifecycleEvents, type LifecycleEvents } from "../orchestrations/clients/events/lifecycle-events.js";
import { AksAccess } from "../orchestrations/clients/kube/aks-access.js";
import { Mailbox } from "../orchestrations/clients/mailbox/mailbox.js";
import { Registry } from "../orchestrations/clients/registry/registry.js";
import { OneTimeSecrets } from "../orchestrations/clients/secrets/one-time-secrets.js";
import type { ServiceProvider, Services } from "../orchestrations/services.js";
import { NotConfiguredError, settings as settingsOfProcess, type Settings } from "../orchestrations/settings.js";

/**
 * ARM waits the pacer sleeps in the activity rather than fail it: a durable timer costs an orchestration episode and
 * the backend's timer latency (seconds), more than a worker slot held this long.
 */
const ABSORB_ARM_WAITS_UP_TO_MS = 1_000;

/** Clients to use instead of the ones the settings describe (tests, the sandbox). */
export interface ServiceParts {
  arm?: ArmClients;
  mailbox?: Mailbox;
  credential?: TokenCredential;
  events?: LifecycleEvents;
  now?: () => Date;
  /** The registry's transport; default HTTP (benchmarks pass Azurite's handler in process). */
  tablesHttpClient?: HttpClient;
}

export interface ServiceProviderOptions {
  /** Where settings come from; default: the process environment, parsed on every call. */
  settings?: () => Settings;
  parts?: ServiceParts;
}

export function createServiceProvider(options: ServiceProviderOptions = {}): ServiceProvider {
  const readSettings = options.settings ?? settingsOfProcess;
  // ARM's buckets belong to the principal, not to a settings snapshot: one pacer for the life of the process.
  const armPacer = new ArmPacer({ absorbUpToMs: ABSORB_ARM_WAITS_UP_TO_MS });
  let cached: { settings: Settings; key: string; services: Services; ready: Promise<void> } | undefined;
  return async () => {
    const s = readSettings();
    // settings() hands back the same object while nothing changed; a provided reader may build a new equal one.
    if (cached?.settings !== s && cached?.key !== JSON.stringify(s)) {
      const services = buildServices(s, options.parts ?? {}, armPacer);
      cached = { settings: s, key: JSON.stringify(s), services, ready: services.registry.ensureTables() };
    }
    const current = cached;
    try {
      await current.ready;
    } catch (error) {
      // A failed table check must not poison the process: the next call tries again.
      if (cached === current) cached = undefined;
      throw error;
    }
    return current.services;
  };
}

/** Every client, built lazily: an app that never sends to a mailbox never needs Service Bus settings. */
export function buildServices(s: Settings, parts: ServiceParts = {}, armPacer: ArmPacer = new ArmPacer({ absorbUpToMs: ABSORB_ARM_WAITS_UP_TO_MS })): Services {
  const credential = lazy<TokenCredential>(() => parts.credential ?? new DefaultAzureCredential({ managedIdentityClientId: s.AZURE_CLIENT_ID }));
  const registry = new Registry(
    s.REGISTRY_CONNECTION
      ? { connectionString: s.REGISTRY_CONNECTION, prefix: s.REGISTRY_TABLE_PREFIX, ...(parts.tablesHttpClient ? { httpClient: parts.tablesHttpClient } : {}) }
      : { endpoint: s.REGISTRY_TABLE_ENDPOINT, credential: credential(), prefix: s.REGISTRY_TABLE_PREFIX },
  );
  const arm = lazy(() => parts.arm ?? new ArmClients({ credential: credential(), endpoint: s.ARM_ENDPOINT, pacer: armPacer }));
  const aks = lazy(() => new AksAccess({ arm: arm(), credential: credential() }));
  return {
    settings: s,
    registry,
    now: parts.now ?? (() => new Date()),
    mailbox: lazy(() => parts.mailbox ?? buildMailbox(s, credential)),
    signingKey: lazy(() => {
      if (!s.SERVICE_SIGNING_KEY) throw new NotConfiguredError("SERVICE_SIGNING_KEY");
      return createPrivateKey(s.SERVICE_SIGNING_KEY);
    }),
    secrets: lazy(() => {
      if (!s.SECRETS_KEY) throw new NotConfiguredError("SECRETS_KEY");
      return new OneTimeSecrets(registry, Buffer.from(s.SECRETS_KEY, "base64"));
    }),
    arm,
    credential,
    kube: (clusterResourceId) => aks().get(clusterResourceId),
    events: lazy(
      () =>
        parts.events ??
        (s.LIFECYCLE_EVENTS_ENDPOINT ? eventGridLifecycleEvents({ endpoint: s.LIFECYCLE_EVENTS_ENDPOINT, credential: credential() }) : droppedLifecycleEvents),
    ),
  };
}

function buildMailbox(s: Settings, credential: () => TokenCredential): Mailbox {
  if (!s.MAILBOX_LISTEN_KEY || !s.MAILBOX_SEND_KEY) throw new NotConfiguredError("MAILBOX_LISTEN_KEY and MAILBOX_SEND_KEY");
  let host: string;
  let client: ServiceBusClient;
  let admin: ServiceBusAdministrationClient;
  if (s.SERVICEBUS_CONNECTION) {
    host = namespaceHostOf(s.SERVICEBUS_CONNECTION);
    client = new ServiceBusClient(s.SERVICEBUS_CONNECTION);
    admin = new ServiceBusAdministrationClient(s.SERVICEBUS_CONNECTION);
  } else if (s.SERVICEBUS_CONNECTION__fullyQualifiedNamespace) {
    host = s.SERVICEBUS_CONNECTION__fullyQualifiedNamespace;
    client = new ServiceBusClient(host, credential());
    admin = new ServiceBusAdministrationClient(host, credential());
  } else {
    throw new NotConfiguredError("SERVICEBUS_CONNECTION");
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

/** The namespace host of a Service Bus connection string (the settings schema already checked `Endpoint=sb://`). */
function namespaceHostOf(connectionString: string): string {
  const host = /Endpoint=sb:\/\/([^/;]+)/i.exec(connectionString)?.[1];
  if (!host) throw new Error("SERVICEBUS_CONNECTION has no Endpoint=sb://<host>");
  return host;
}

function lazy<T>(build: () => T): () => T {
  let value: { v: T } | undefined;
  return () => (value ??= { v: build() }).v;
}
