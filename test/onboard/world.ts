/**
 * Everything the onboarding saga touches, emulated and wired together: the function app on the host stand-in with the
 * Durable simulator in virtual time, registry tables in Azurite, the ARM emulator on the simulator's clock (so
 * throttling refills in the same emulated time as the saga's retries), the Kubernetes API emulator behind the AKS
 * admin credential, the Service Bus emulator with the results trigger, and a scripted agent per node.
 */
import { expect } from "vitest";
import type { ArmPacer } from "../../orchestrations/clients/arm/write-pacer.js";
import type { LifecycleEvents } from "../../orchestrations/clients/events/lifecycle-events.js";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import type { HttpClient } from "@azure/core-rest-pipeline";
import { ServiceBusAdministrationClient, ServiceBusClient } from "@azure/service-bus";
import { ArmClients } from "../../orchestrations/clients/arm/arm-clients.js";
import { AKS_ENTRA_SERVER_APP_ID } from "../../orchestrations/clients/kube/index.js";
import { Mailbox, REJECTED_RESULTS_QUEUE, RESULTS_QUEUE, type NodeMailboxCredentials } from "../../orchestrations/clients/mailbox/mailbox.js";
import type { Timing } from "../../orchestrations/onboard/timing.js";
import { ArmEmulator, BUILT_IN_ROLES, emulatorCredential, type ArmEmulatorOptions, type ClusterFixture } from "../arm-emulator/index.js";
import type { InstanceStatus } from "../durable/index.js";
import { mailboxRules, newNode, startApp, type TestApp, type TestNode } from "../function-app/index.js";
import { startServiceBusTriggers, type RunningTriggers } from "../functions-host/index.js";
import { KubeEmulator } from "../kube-emulator/index.js";
import { DEFAULT_RULE, ServiceBusEmulator, type RunningEmulator } from "../servicebus-emulator/index.js";
import type { ManualClock } from "../support/index.js";
import { AgentResponder, type Script } from "./agent-responder.js";

export const SUBSCRIPTION = "00000000-0000-4000-8000-000000000001";
export const CLUSTER_RG = "rg-aks";
export const ARC_RG = "rg-arc";
export const CLUSTER_ID = `/subscriptions/${SUBSCRIPTION}/resourceGroups/${CLUSTER_RG}/providers/Microsoft.ContainerService/managedClusters/aks-1`;
export const ARC_RG_ID = `/subscriptions/${SUBSCRIPTION}/resourceGroups/${ARC_RG}`;
export const SERVICE_PRINCIPAL = "5e1f0000-0000-4000-8000-0000000000aa";

/** Saga timing for tests: same shape as production, milliseconds instead of minutes (virtual time anyway). */
export const TEST_TIMING: Partial<Timing> = {
  azureRetry: { firstRetryMs: 1_000, backoff: 2, maxRetryMs: 8_000, maxAttempts: 5 },
  principalPoll: { firstIntervalMs: 1_000, maxIntervalMs: 4_000, attempts: 5 },
  readyPoll: { firstIntervalMs: 1_000, maxIntervalMs: 4_000, attempts: 5 },
  resetWaitMs: 30_000,
};

const fakeArtifact = (name: string) => ({ url: `https://artifacts.flexnode.example/${name}`, sha256: randomBytes(32).toString("hex") });
export const TEST_CATALOG = {
  containerd: { amd64: fakeArtifact("containerd-amd64.tar.gz"), arm64: fakeArtifact("containerd-arm64.tar.gz") },
  kubernetes: { "1.31.2": { amd64: fakeArtifact("kubelet-1.31.2-amd64"), arm64: fakeArtifact("kubelet-1.31.2-arm64") } },
  cniPlugins: { amd64: fakeArtifact("cni-amd64.tgz"), arm64: fakeArtifact("cni-arm64.tgz") },
  runc: { amd64: fakeArtifact("runc.amd64"), arm64: fakeArtifact("runc.arm64") },
  sysext: {
    containerd: { amd64: fakeArtifact("containerd-amd64.raw"), arm64: fakeArtifact("containerd-arm64.raw") },
    kubernetes: { "1.31.2": { amd64: fakeArtifact("kubernetes-1.31.2-amd64.raw"), arm64: fakeArtifact("kubernetes-1.31.2-arm64.raw") } },
  },
};

export interface EnrolledNode {
  nodeId: string;
  node: TestNode;
  mailbox: NodeMailboxCredentials;
  agent: AgentResponder;
}

export interface World {
  clock: ManualClock;
  app: TestApp;
  arm: ArmEmulator;
  kube: KubeEmulator;
  sb: ServiceBusEmulator;
  /** The service's mailbox client on the Service Bus emulator (what the app's functions are given). */
  mailbox: Mailbox;
  triggers: RunningTriggers;
  /** Enrols a node (HTTP, as the agent would) and starts its scripted agent. */
  enrol(options?: { script?: Script; immutable?: boolean; pool?: string; kubeletNode?: string | null }): Promise<EnrolledNode>;
  /**
   * The same machine and key enrol again (201, the same node id) and a fresh scripted agent takes the answer. It
   * attaches once the new run has re-created the queue: a receiver whose queue was deleted under it backs off for
   * seconds before re-attaching, longer than the test timing keeps a step's envelope alive. The caller closes it.
   */
  reenrol(nodeId: string, node: TestNode): Promise<AgentResponder>;
  /** Stops a node's scripted agent (a long run keeps hundreds of idle receivers otherwise). */
  retire(nodeId: string): Promise<void>;
  /** Runs the node's saga to a terminal state, moving virtual time only when nothing else can happen. */
  settle(nodeId: string, options?: { maxIterations?: number }): Promise<InstanceStatus>;
  close(): Promise<void>;
}

export async function startWorld(
  options: {
    poolSpec?: Record<string, unknown>;
    timing?: Partial<Timing>;
    entraOnlyCluster?: boolean;
    /** The cluster's networkProfile (default: the emulator's, no network plugin). */
    clusterNetwork?: ClusterFixture["network"];
    machineDelete?: ArmEmulatorOptions["machineDelete"];
    /** Where lifecycle events go (default: dropped, as without a topic). */
    events?: LifecycleEvents;
    /** Wraps the service's ARM transport (e.g. answers as ARM gives them while a new identity is still being assigned). */
    armTransport?: (inner: HttpClient) => HttpClient;
    /** The service's ARM pacer (production has one; the world's clients have none by default). */
    armPacer?: ArmPacer;
    /** The ARM emulator's buckets (default ARM's). */
    armThrottling?: ArmEmulatorOptions["throttling"];
    /** false: an extension bundle that drops FailureDetails, so the saga sees only the legacy Reason/Details. */
    failureDetails?: boolean;
  } = {},
): Promise<World> {
  const sbEmulator = new ServiceBusEmulator({
    rules: [DEFAULT_RULE, { ...mailboxRules.listen, rights: ["Listen"] }, { ...mailboxRules.send, rights: ["Send"] }],
    queues: [{ name: RESULTS_QUEUE }, { name: REJECTED_RESULTS_QUEUE }],
  });
  const sb: RunningEmulator = await sbEmulator.start();
  const app = await startApp({
    serviceBus: { connectionString: sb.connectionString(), nodeNamespace: sb.credentialNamespace },
    ...(options.failureDetails === undefined ? {} : { simulator: { failureDetails: options.failureDetails } }),
  });
  process.env.SECRETS_KEY = randomBytes(32).toString("base64");
  process.env.ARTIFACT_CATALOG = JSON.stringify(TEST_CATALOG);
  process.env.SAGA_TIMING = JSON.stringify({ ...TEST_TIMING, ...options.timing });
  process.env.SERVICE_PRINCIPAL_ID = SERVICE_PRINCIPAL;
  const clock = app.simulator.clock as ManualClock;

  const kube = new KubeEmulator();
  const kubeServer = await kube.start();
  const arm = new ArmEmulator({
    clock,
    replicationDelayMs: 0,
    ...(options.armThrottling !== undefined ? { throttling: options.armThrottling } : {}),
    ...(options.machineDelete ? { machineDelete: options.machineDelete } : {}),
    resourceGroups: [
      { subscriptionId: SUBSCRIPTION, name: CLUSTER_RG, location: "eastus" },
      { subscriptionId: SUBSCRIPTION, name: ARC_RG, location: "eastus" },
    ],
  });
  const entra = options.entraOnlyCluster ? { disableLocalAccounts: true, aadProfile: { managed: true, enableAzureRBAC: true } } : {};
  const cluster = arm.addCluster({
    subscriptionId: SUBSCRIPTION,
    resourceGroup: CLUSTER_RG,
    name: "aks-1",
    location: "eastus",
    serverUrl: kubeServer.server,
    caPem: kubeServer.caPem,
    kubernetesVersion: "1.31.2",
    ...(options.clusterNetwork ? { network: options.clusterNetwork } : {}),
    ...entra,
  });
  // Entra-only: the service reaches the API server with its own Entra token, as an AKS RBAC Cluster Admin.
  if (options.entraOnlyCluster) kube.trustEntra({ serverAppId: AKS_ENTRA_SERVER_APP_ID, admins: [SERVICE_PRINCIPAL] });
  else kube.addToken(cluster.adminToken);

  const mailbox = new Mailbox({
    client: new ServiceBusClient(sb.connectionString()),
    admin: new ServiceBusAdministrationClient(sb.connectionString(), { ...sb.adminClientOptions(), retryOptions: { maxRetries: 0 } }),
    namespaceUri: sb.endpoint,
    nodeNamespace: sb.credentialNamespace,
    listenRule: mailboxRules.listen,
    sendRule: mailboxRules.send,
  });
  // Retries belong to the saga's durable policy (virtual time), not to SDK sleeps (wall time).
  const armClients = new ArmClients({
    credential: emulatorCredential(SERVICE_PRINCIPAL),
    httpClient: options.armTransport ? options.armTransport(arm.httpClient) : arm.httpClient,
    retryOptions: { maxRetries: 0 },
    ...(options.armPacer ? { pacer: options.armPacer } : {}),
  });
  const credential = emulatorCredential(SERVICE_PRINCIPAL);
  app.useServices({ arm: armClients, mailbox, credential, ...(options.events ? { events: options.events } : {}) });

  const spec = {
    roleGrants: [
      { roleDefinitionId: BUILT_IN_ROLES["Azure Kubernetes Service Cluster User Role"], scope: "cluster" },
      { roleDefinitionId: BUILT_IN_ROLES.Reader, scope: "arcResourceGroup" },
    ],
    maxInFlight: 100,
    ...options.poolSpec,
  };
  const created = await app.call("POST", "/api/manage/pools", {
    headers: (await import("../function-app/index.js")).admin,
    body: { name: "edge", clusterResourceId: CLUSTER_ID, arc: { resourceGroupId: ARC_RG_ID, location: "eastus", tags: { env: "test" } }, ...spec },
  });
  if (created.status !== 201) throw new Error(`pool create failed: ${created.body}`);
  const triggers = startServiceBusTriggers(app.host);
  const agents = new Map<string, AgentResponder>();

  const idle = () =>
    [...agents.values()].every((a) => a.pending === 0) &&
    sum([...agents.values()].map((a) => a.resultsSent)) <= triggers.invocations.length &&
    sbEmulator.inspect.queues().every((q) => q.active === 0 || q.name === REJECTED_RESULTS_QUEUE);

  return {
    clock,
    app,
    arm,
    kube,
    sb: sbEmulator,
    mailbox,
    triggers,
    enrol: async ({ script, immutable, pool = "edge", kubeletNode } = {}) => {
      const node = newNode(
        immutable === undefined ? {} : { immutable: { readOnlyUsr: immutable, ostree: false, flatcar: immutable, kairos: false, bootc: false } },
      );
      const token = await app.createToken(pool);
      const res = await app.enrol(node, token);
      if (res.status !== 201) throw new Error(`enrol failed: ${res.status} ${res.body}`);
      const body = res.json as { nodeId: string; mailbox: NodeMailboxCredentials; service: { publicKey: string } };
      const { importPublicKey } = await import("../../contract/keys.js");
      const agent = new AgentResponder({
        app,
        kube,
        nodeId: body.nodeId,
        privateKey: node.privateKey,
        servicePublicKey: importPublicKey(body.service.publicKey),
        mailbox: body.mailbox,
        script,
        kubeletNode,
      });
      agent.start();
      agents.set(body.nodeId, agent);
      return { nodeId: body.nodeId, node, mailbox: body.mailbox, agent };
    },
    reenrol: async (nodeId, node) => {
      const again = await app.enrol(node, await app.createToken("edge"));
      expect(again.status).toBe(201);
      const body = again.json as { nodeId: string; mailbox: NodeMailboxCredentials; service: { publicKey: string } };
      expect(body.nodeId).toBe(nodeId);
      const { importPublicKey } = await import("../../contract/keys.js");
      const agent = new AgentResponder({
        app,
        kube,
        nodeId,
        privateKey: node.privateKey,
        servicePublicKey: importPublicKey(body.service.publicKey),
        mailbox: body.mailbox,
      });
      await app.simulator.runUntilIdle();
      agent.start();
      return agent;
    },
    retire: async (nodeId) => {
      const agent = agents.get(nodeId);
      agents.delete(nodeId);
      await agent?.close();
    },
    settle: async (nodeId, { maxIterations = 2_000 } = {}) => {
      for (let i = 0; i < maxIterations; i++) {
        await app.simulator.runUntilIdle();
        const status = app.simulator.getStatus(nodeId)!;
        if (["Completed", "Failed", "Terminated"].includes(status.runtimeStatus)) return status;
        await quiesce(idle);
        if (app.simulator.hasPendingWork()) continue;
        const next = app.simulator.nextTimerAt();
        if (next === undefined) throw new Error(`saga ${nodeId} is stuck: ${JSON.stringify(status.customStatus)}`);
        await app.simulator.advance(Math.max(0, next - clock.now()));
      }
      throw new Error(`saga ${nodeId} did not finish in ${maxIterations} iterations`);
    },
    close: async () => {
      await Promise.all([...agents.values()].map((a) => a.close()));
      await triggers.close();
      await app.close();
      await kubeServer.close();
      await sbEmulator.stop();
    },
  };
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

/** Waits until the agents and the trigger have nothing in flight (bounded). */
async function quiesce(idle: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let calm = 0;
  while (Date.now() < deadline) {
    calm = idle() ? calm + 1 : 0;
    if (calm >= 2) return;
    await new Promise((r) => setTimeout(r, 5));
  }
}

export { generateKeyPairSync };
