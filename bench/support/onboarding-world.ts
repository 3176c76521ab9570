/**
 * The onboarding service wired for benchmarks, all in one process on one emulated clock:
 * - real: the function app on the host stand-in, the onboardNode orchestration in the real durable-functions replay
 *   engine (Durable simulator, virtual time), every activity, the registry in Azurite, the ARM emulator with ARM's
 *   token buckets on the simulator's clock (a 429 goes back to the activity, whose durable retry policy absorbs it),
 *   the Kubernetes API emulator over HTTPS, the node-results trigger function, the signed node API;
 * - replaced: Service Bus (an in-process mailbox hands envelopes to in-process agents, which hand signed results to the
 *   trigger function; see in-process-mailbox.ts) and the node itself (scripted agents whose steps take modelled time).
 * With a latency model, every ARM, Kubernetes and Service Bus call also advances the emulated clock by its latency, and
 * a new machine's identity gets its principalId only after the model's delay.
 */
import { randomBytes, type KeyObject } from "node:crypto";
import type { HttpClient } from "@azure/core-rest-pipeline";
import { importPublicKey } from "../../contract/keys.js";
import type { StepEnvelope } from "../../contract/step-envelope.js";
import { ArmClients } from "../../orchestrations/clients/arm/arm-clients.js";
import { ArmPacer } from "../../orchestrations/clients/arm/write-pacer.js";
import type { NodeMailboxCredentials } from "../../orchestrations/clients/mailbox/mailbox.js";
import { ArmEmulator, BUILT_IN_ROLES, emulatorCredential, type ThrottlingOptions } from "../../test/arm-emulator/index.js";
import { KubeEmulator } from "../../test/kube-emulator/index.js";
import type { ManualClock } from "../../test/support/index.js";
import type { TestNode } from "../../test/function-app/index.js";
import { withIdentityDelay } from "./identity-delay.js";
import { InProcessAgents } from "./in-process-agents.js";
import { InProcessMailbox } from "./in-process-mailbox.js";
import { armLatencyMs, type LatencyModel } from "./latency-model.js";
import { startServiceApp, type ServiceApp } from "./service-app.js";

export const SUBSCRIPTION = "00000000-0000-4000-8000-000000000001";
export const CLUSTER_RG = "rg-aks";
export const ARC_RG = "rg-arc";
export const CLUSTER_ID = `/subscriptions/${SUBSCRIPTION}/resourceGroups/${CLUSTER_RG}/providers/Microsoft.ContainerService/managedClusters/aks-1`;
export const ARC_RG_ID = `/subscriptions/${SUBSCRIPTION}/resourceGroups/${ARC_RG}`;
export const SERVICE_PRINCIPAL = "5e1f0000-0000-4000-8000-0000000000aa";
export const POOL = "edge";
/** What the world's pool grants each node's Arc identity: two role assignments per node, as in the saga tests. */
export const ROLE_GRANTS = [
  { roleDefinitionId: BUILT_IN_ROLES["Azure Kubernetes Service Cluster User Role"], scope: "cluster" },
  { roleDefinitionId: BUILT_IN_ROLES.Reader, scope: "arcResourceGroup" },
] as const;

export interface BenchNode {
  privateKey: KeyObject;
  publicKey: string;
  facts: TestNode["facts"];
}

export type EnrolAnswer =
  { kind: "created"; nodeId: string; mailbox: NodeMailboxCredentials } | { kind: "refused"; status: number; retryAfterMs: number | undefined; body: string };

export interface OnboardingWorldOptions {
  azuriteConnectionString: string;
  /** The registry's transport when its tables are in process (bench-tables.ts); default HTTP to the connection. */
  tablesHttpClient?: HttpClient;
  maxInFlight: number;
  /** ARM throttling; default ARM's documented buckets. */
  throttling?: ThrottlingOptions | false;
  /** When given, every remote call advances the emulated clock by its modelled latency. */
  latency?: LatencyModel;
  /** How long the scripted node takes for a step (emulated ms). */
  stepDurationMs(envelope: StepEnvelope): number;
  /** How long after joining a kubelet's Node turns Ready (emulated ms). */
  kubeletReadyAfterMs: number;
  /**
   * The ARM pacer of production on the emulated clock, sleeping no wait in-process (such a sleep would be a timer the
   * virtual-time loop cannot see; a durable timer of the same length has the same effect on the buckets). Default off.
   */
  pacing?: boolean;
  /** Saga timing overrides (SAGA_TIMING); default none: production timing. */
  timing?: Record<string, unknown>;
  /** How many of ROLE_GRANTS the pool grants each node (default all: two). */
  roleGrants?: number;
}

export interface OnboardingWorld {
  app: ServiceApp;
  clock: ManualClock;
  arm: ArmEmulator;
  kube: KubeEmulator;
  /** The Kubernetes emulator's HTTPS base URL. */
  kubeUrl: string;
  mailbox: InProcessMailbox;
  agents: InProcessAgents;
  /** The service's ARM pacer, when `pacing`. */
  pacer: ArmPacer | undefined;
  /** A fresh machine (new key, new identity); immutable = Flatcar-like read-only /usr (the default), else mutable. */
  newNode(options?: { immutable?: boolean }): BenchNode;
  createToken(maxUses: number): Promise<string>;
  enrol(node: BenchNode, token: string): Promise<EnrolAnswer>;
  close(): Promise<void>;
}

export async function startOnboardingWorld(options: OnboardingWorldOptions): Promise<OnboardingWorld> {
  const app = await startServiceApp({
    azuriteConnectionString: options.azuriteConnectionString,
    settings: {
      SECRETS_KEY: randomBytes(32).toString("base64"),
      SERVICE_PRINCIPAL_ID: SERVICE_PRINCIPAL,
      ...(options.timing ? { SAGA_TIMING: JSON.stringify(options.timing) } : {}),
    },
  });
  // Loaded after the app: these modules import function modules, which need the functions core stand-in first.
  const { TEST_CATALOG } = await import("../../test/onboard/world.js");
  const { mailboxRules, newNode } = await import("../../test/function-app/index.js");
  process.env.ARTIFACT_CATALOG = JSON.stringify(TEST_CATALOG);
  if (!options.timing) delete process.env.SAGA_TIMING;

  const clock = app.simulator.clock as ManualClock;
  const latency = options.latency;
  const wait = (ms: number) => {
    clock.advance(ms);
    return Promise.resolve();
  };

  // The Kubernetes emulator keeps the wall clock: bootstrap-token expiry is stamped by the service's wall clock.
  const kube = new KubeEmulator({ sleep: wait });
  const kubeServer = await kube.start();
  if (latency) kube.faults.inject({ path: /.*/, latencyMs: latency.kubeRequestMs, times: Number.POSITIVE_INFINITY });

  const arm = new ArmEmulator({
    clock,
    throttling: options.throttling ?? {},
    resourceGroups: [
      { subscriptionId: SUBSCRIPTION, name: CLUSTER_RG, location: "eastus" },
      { subscriptionId: SUBSCRIPTION, name: ARC_RG, location: "eastus" },
    ],
    ...(latency ? { latency: (route) => armLatencyMs(latency, route), sleep: wait } : {}),
  });
  const cluster = arm.addCluster({
    subscriptionId: SUBSCRIPTION,
    resourceGroup: CLUSTER_RG,
    name: "aks-1",
    location: "eastus",
    serverUrl: kubeServer.server,
    caPem: kubeServer.caPem,
    kubernetesVersion: "1.31.2",
  });
  kube.addToken(cluster.adminToken);

  const agents = new InProcessAgents({
    host: app.host,
    kube,
    clock,
    stepDurationMs: options.stepDurationMs,
    kubeletReadyAfterMs: options.kubeletReadyAfterMs,
    call: (method, path, headers) => app.call(method, path, { headers }),
  });
  const mailbox = new InProcessMailbox({
    listenRule: mailboxRules.listen,
    sendRule: mailboxRules.send,
    deliver: (envelope) => agents.receive(envelope),
    ...(latency ? { latency: { send: () => wait(latency.serviceBus.sendMs), manage: () => wait(latency.serviceBus.manageMs) } } : {}),
  });
  // Retries belong to the saga's durable policy (emulated time), not to SDK sleeps (wall time).
  const httpClient = latency ? withIdentityDelay(arm.httpClient, clock, latency.arm.machineIdentityDelayMs) : arm.httpClient;
  const pacer = options.pacing ? new ArmPacer({ now: () => clock.now() }) : undefined;
  const armClients = new ArmClients({
    credential: emulatorCredential(SERVICE_PRINCIPAL),
    httpClient,
    retryOptions: { maxRetries: 0 },
    ...(pacer ? { pacer } : {}),
  });
  app.useServices({ arm: armClients, mailbox, ...(options.tablesHttpClient ? { tablesHttpClient: options.tablesHttpClient } : {}) });

  await app.createPool(POOL, {
    clusterResourceId: CLUSTER_ID,
    arc: { resourceGroupId: ARC_RG_ID, location: "eastus", tags: { env: "bench" } },
    roleGrants: ROLE_GRANTS.slice(0, options.roleGrants ?? ROLE_GRANTS.length),
    maxInFlight: options.maxInFlight,
  });

  return {
    app,
    clock,
    arm,
    kube,
    kubeUrl: kubeServer.server,
    mailbox,
    agents,
    pacer,
    newNode: ({ immutable = true } = {}) => newNode({ immutable: { readOnlyUsr: immutable, ostree: false, flatcar: immutable, kairos: false, bootc: false } }),
    createToken: (maxUses) => app.createToken(POOL, { maxUses, expiresInHours: 24 * 30 }),
    enrol: async (node, token) => {
      const res = await app.enrol(node, token);
      if (res.status !== 201) {
        const retryAfter = Number(res.headers["retry-after"]);
        return {
          kind: "refused",
          status: res.status,
          retryAfterMs: Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : undefined,
          body: res.body,
        };
      }
      const body = res.json as { nodeId: string; mailbox: NodeMailboxCredentials; service: { publicKey: string } };
      agents.register(body.nodeId, node.privateKey, importPublicKey(body.service.publicKey));
      return { kind: "created", nodeId: body.nodeId, mailbox: body.mailbox };
    },
    close: async () => {
      await app.close();
      await kubeServer.close();
    },
  };
}
