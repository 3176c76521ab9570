/**
 * The whole service on one machine, in REAL time: the function app (every real function module) on the host
 * stand-in behind a real HTTP listener, the Durable simulator in realtime mode driving the real replay engine, the
 * Service Bus results trigger and the timer trigger (sweeper) on its schedule, registry tables in Azurite, and emulators for everything Azure: ARM (Arc machines, role
 * assignments, the AKS cluster, throttling; over HTTPS), Service Bus (AMQP + management), the cluster's Kubernetes API
 * (HTTPS), and an HTTPS artifact mirror. Used by `npm start` (test/sandbox/main.ts) and the end-to-end tests.
 *
 * One stack per process: the function app reads its settings from process.env and registers its functions once.
 */
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { ServiceBusAdministrationClient, ServiceBusClient } from "@azure/service-bus";
import { ArmClients } from "../../orchestrations/clients/arm/arm-clients.js";
import { Mailbox, REJECTED_RESULTS_QUEUE, RESULTS_QUEUE } from "../../orchestrations/clients/mailbox/mailbox.js";
import type { Timing } from "../../orchestrations/onboard/timing.js";
import { ArmEmulator, emulatorCredential, type ListeningEmulator, type ThrottlingOptions } from "../arm-emulator/index.js";
import { startAzurite, type RunningAzurite } from "../azurite/index.js";
import { startDurableHarness, type DurableHarness } from "../durable/index.js";
import { installFunctionsCore, startServiceBusTriggers, type FunctionsHost, type RunningTriggers } from "../functions-host/index.js";
import { KubeEmulator, type RunningKubeEmulator } from "../kube-emulator/index.js";
import { DEFAULT_RULE, ServiceBusEmulator, type RunningEmulator } from "../servicebus-emulator/index.js";
import { startEventGridReceiver, type EventGridReceiver } from "../eventgrid-receiver/index.js";
import { eventGridLifecycleEvents } from "../../orchestrations/clients/events/lifecycle-events.js";
import { startArtifactServer, type ArtifactServer } from "./artifact-server.js";
import { ARC_RG, CLUSTER_NAME, CLUSTER_RG, DEMO_POOL, demoPoolBody, KUBERNETES_VERSION, LOCATION, SERVICE_PRINCIPAL_ID, SUBSCRIPTION } from "./estate.js";
import { startFrontDoor, type FrontDoor } from "./front-door.js";
import { startTimerTriggers, type RunningTimers } from "./timer-triggers.js";

/**
 * Saga timing for a real-time sandbox: production's shape with sub-second retries and polls, so a failure compensates
 * in seconds. Node step timeouts are production's × `stepTimeoutScale` (e.g. 60 s for a 600 s download).
 */
export const SANDBOX_TIMING: Partial<Timing> = {
  azureRetry: { firstRetryMs: 500, backoff: 2, maxRetryMs: 4_000, maxAttempts: 5 },
  principalPoll: { firstIntervalMs: 500, maxIntervalMs: 500, attempts: 20 },
  readyPoll: { firstIntervalMs: 500, maxIntervalMs: 500, attempts: 20 },
  stepTimeoutScale: 0.5,
  resetWaitMs: 20_000,
};

export interface StackOptions {
  /** Port of the function app on 127.0.0.1; 0 (default) picks a free one. `npm start` uses 7071 like `func start`. */
  port?: number;
  /** An Azurite to use (the vitest globalSetup's); default: start one for this stack and stop it on close. */
  storageConnectionString?: string;
  timing?: Partial<Timing>;
  /** Artifact bytes the mirror serves instead of its stand-ins (the real-host tier's squashfs sysext images). */
  artifacts?: { replace?: Readonly<Record<string, Buffer>> };
  /** ARM's throttling buckets (default: ARM's documented limits); `npm start -- --arm-throttle` shrinks them. */
  armThrottling?: ThrottlingOptions;
  /** Service-side log lines (function and activity failures); default: dropped. */
  log?: (line: string) => void;
}

export interface Stack {
  /** The function app: `http://127.0.0.1:<port>`. */
  url: string;
  /** Bearer token the front door maps to a sandbox admin (App Service authentication stand-in). */
  adminToken: string;
  front: FrontDoor;
  harness: DurableHarness;
  triggers: RunningTriggers;
  /** Timer triggers (the sweeper) on their schedules. */
  timers: RunningTimers;
  arm: ArmEmulator;
  armEndpoint: ListeningEmulator;
  kube: KubeEmulator;
  kubeServer: RunningKubeEmulator;
  sb: ServiceBusEmulator;
  sbRunning: RunningEmulator;
  artifacts: ArtifactServer;
  /** The Event Grid topic lifecycle CloudEvents go to (a local receiver; `onEvent` to see them). */
  events: EventGridReceiver;
  /** The Azurite this stack started (undefined when it was given one). */
  azurite: RunningAzurite | undefined;
  storageConnectionString: string;
  tablePrefix: string;
  timing: Partial<Timing>;
  /** Calls the admin API over HTTP as the sandbox admin. */
  admin(method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown; text: string }>;
  /** Creates the demo pool through the admin API. */
  createDemoPool(maxInFlight?: number): Promise<void>;
  /** Creates an enrolment token for the demo pool; returns the secret token and the enrolment URL (shown once). */
  createToken(body?: Record<string, unknown>): Promise<{ token: string; enrolmentUrl: string }>;
  close(): Promise<void>;
}

export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const log = options.log ?? (() => undefined);
  const closers: (() => Promise<void> | void)[] = [];
  const savedEnv = { ...process.env };
  closers.push(() => {
    for (const key of Object.keys(process.env)) if (!(key in savedEnv)) delete process.env[key];
    Object.assign(process.env, savedEnv);
  });
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    for (const c of closers.reverse()) {
      try {
        await c();
      } catch (error) {
        log(`sandbox shutdown: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  };

  try {
    // The function modules register through @azure/functions-core; the stand-in must be in place before they load.
    installFunctionsCore();
    const { registerApp } = await import("../../functions/register-app.js");
    const { createServiceProvider } = await import("../../functions/composition-root.js");

    let azurite: RunningAzurite | undefined;
    let storage = options.storageConnectionString;
    if (!storage) {
      azurite = await startAzurite();
      closers.push(() => azurite!.stop());
      storage = azurite.connectionString;
    }

    const mailboxRules = {
      listen: { name: "flexnode-node-listen", key: randomBytes(32).toString("base64") },
      send: { name: "flexnode-node-send", key: randomBytes(32).toString("base64") },
    };
    const sb = new ServiceBusEmulator({
      rules: [DEFAULT_RULE, { ...mailboxRules.listen, rights: ["Listen"] }, { ...mailboxRules.send, rights: ["Send"] }],
      queues: [{ name: RESULTS_QUEUE }, { name: REJECTED_RESULTS_QUEUE }],
    });
    const sbRunning = await sb.start();
    closers.push(() => sb.stop());

    const kube = new KubeEmulator();
    const kubeServer = await kube.start();
    closers.push(() => kube.stop());

    const arm = new ArmEmulator({
      ...(options.armThrottling ? { throttling: options.armThrottling } : {}),
      // Real time: ARM's 200 s Retry-After on a machine delete would hold every offboarding for minutes.
      machineDelete: { retryAfterSeconds: 1 },
      resourceGroups: [
        { subscriptionId: SUBSCRIPTION, name: CLUSTER_RG, location: LOCATION },
        { subscriptionId: SUBSCRIPTION, name: ARC_RG, location: LOCATION },
      ],
    });
    const cluster = arm.addCluster({
      subscriptionId: SUBSCRIPTION,
      resourceGroup: CLUSTER_RG,
      name: CLUSTER_NAME,
      location: LOCATION,
      serverUrl: kubeServer.server,
      caPem: kubeServer.caPem,
      kubernetesVersion: KUBERNETES_VERSION,
    });
    kube.addToken(cluster.adminToken);
    const armEndpoint = await arm.listen();
    closers.push(() => armEndpoint.close());

    const artifacts = await startArtifactServer({
      kubernetesVersion: KUBERNETES_VERSION,
      ...(options.artifacts?.replace ? { replace: options.artifacts.replace } : {}),
    });
    closers.push(() => artifacts.close());

    // The listener comes first (its URL is the app's PUBLIC_BASE_URL); requests before the host exists get a 503.
    const app: { host?: FunctionsHost } = {};
    const front = await startFrontDoor({ port: options.port, host: () => app.host });
    closers.push(() => front.close());

    const timing = { ...SANDBOX_TIMING, ...options.timing };
    const tablePrefix = options.storageConnectionString ? `sb${randomBytes(5).toString("hex")}` : "flexnode";
    // The app settings, as local.settings.json would give them to `func start` (README "App settings").
    Object.assign(process.env, {
      FUNCTIONS_WORKER_RUNTIME: "node",
      DURABLE_TASK_HUB: "FlexNodeSandbox",
      AzureWebJobsStorage: storage,
      REGISTRY_CONNECTION: storage,
      REGISTRY_TABLE_PREFIX: tablePrefix,
      PUBLIC_BASE_URL: front.url,
      // The front door plays App Service authentication, so the admin API may trust its principal header.
      WEBSITE_AUTH_ENABLED: "True",
      ARM_ENDPOINT: armEndpoint.endpoint,
      SERVICEBUS_CONNECTION: sbRunning.connectionString(),
      SERVICEBUS_NODE_NAMESPACE: sbRunning.credentialNamespace,
      MAILBOX_LISTEN_RULE: mailboxRules.listen.name,
      MAILBOX_LISTEN_KEY: mailboxRules.listen.key,
      MAILBOX_SEND_RULE: mailboxRules.send.name,
      MAILBOX_SEND_KEY: mailboxRules.send.key,
      // Made per run: nothing secret is stored in the repository.
      SERVICE_SIGNING_KEY: generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" }).toString(),
      SECRETS_KEY: randomBytes(32).toString("base64"),
      ARTIFACT_CATALOG: JSON.stringify(artifacts.catalog),
      SAGA_TIMING: JSON.stringify(timing),
      SERVICE_PRINCIPAL_ID,
    });
    for (const unset of ["REGISTRY_TABLE_ENDPOINT", "SERVICEBUS_CONNECTION__fullyQualifiedNamespace", "AZURE_CLIENT_ID", "WEBSITE_HOSTNAME"])
      delete process.env[unset];

    // The service's clients, pointed at the emulators: ARM over HTTPS as the service's identity (the emulator's
    // bearer tokens stand in for managed identity), Service Bus management with the emulator's CA.
    const armClients = new ArmClients({
      credential: emulatorCredential(SERVICE_PRINCIPAL_ID),
      endpoint: armEndpoint.endpoint,
      tlsOptions: { ca: armEndpoint.ca! },
    });
    const sbClient = new ServiceBusClient(sbRunning.connectionString());
    closers.push(() => sbClient.close());
    const mailbox = new Mailbox({
      client: sbClient,
      admin: new ServiceBusAdministrationClient(sbRunning.connectionString(), sbRunning.adminClientOptions()),
      namespaceUri: sbRunning.endpoint,
      nodeNamespace: sbRunning.credentialNamespace,
      listenRule: mailboxRules.listen,
      sendRule: mailboxRules.send,
    });
    // Lifecycle CloudEvents go to a local Event Grid endpoint, through the real publisher client as the service's identity.
    const events = await startEventGridReceiver();
    closers.push(() => events.close());
    const publisher = eventGridLifecycleEvents({
      endpoint: events.endpoint,
      credential: emulatorCredential(SERVICE_PRINCIPAL_ID),
      tlsOptions: { ca: events.ca },
    });
    registerApp(createServiceProvider({ parts: { arm: armClients, mailbox, events: publisher } }));

    const harness = await startDurableHarness({
      mode: "realtime",
      activityConcurrency: 16,
      taskHubName: "FlexNodeSandbox",
      hostOptions: { baseUrl: front.url },
    });
    closers.push(() => harness.close());
    const host = harness.host;
    app.host = host;

    const triggers = startServiceBusTriggers(host, { maxConcurrentCalls: 16 });
    closers.push(() => triggers.close());
    const timers = startTimerTriggers(host, { log });
    closers.push(() => timers.close());

    // Event Grid: the ARM emulator publishes machine write/delete events; deliver them to the Event Grid trigger as
    // the platform would (the service ignores its own, and offboards a managed machine deleted by someone else).
    const unsubscribe = arm.events.subscribe((event) => {
      host
        .invoke("machineEvents", { string: JSON.stringify(event) })
        .catch((error: unknown) => log(`machineEvents: ${error instanceof Error ? error.message : String(error)}`));
    });
    closers.push(unsubscribe);

    const admin: Stack["admin"] = async (method, path, body) => {
      const res = await fetch(`${front.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${front.adminToken}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      let json: unknown;
      try {
        json = text ? JSON.parse(text) : undefined;
      } catch {
        json = undefined;
      }
      return { status: res.status, json, text };
    };

    return {
      url: front.url,
      adminToken: front.adminToken,
      front,
      harness,
      triggers,
      timers,
      arm,
      armEndpoint,
      kube,
      kubeServer,
      sb,
      sbRunning,
      artifacts,
      events,
      azurite,
      storageConnectionString: storage,
      tablePrefix,
      timing,
      admin,
      createDemoPool: async (maxInFlight = 100) => {
        const res = await admin("POST", "/api/manage/pools", demoPoolBody(maxInFlight));
        if (res.status !== 201) throw new Error(`creating the demo pool answered ${res.status}: ${res.text}`);
      },
      createToken: async (body = {}) => {
        const res = await admin("POST", `/api/manage/pools/${DEMO_POOL}/tokens`, body);
        if (res.status !== 201) throw new Error(`creating an enrolment token answered ${res.status}: ${res.text}`);
        const created = res.json as { token: string; enrolmentUrl: string };
        return { token: created.token, enrolmentUrl: created.enrolmentUrl };
      },
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}
