/**
 * The onboarding saga's activities: each does one piece of I/O with the clients built once per process, is safe to
 * repeat (deterministic names, 404 as done, "exists" as success) and records on the node what it created, so
 * compensation and the sweeper know exactly what to remove. Inputs and outputs are ids and references only.
 */
import { createHash, randomBytes } from "node:crypto";
import { isRestError } from "@azure/core-rest-pipeline";
import * as df from "durable-functions";
import { v5 as uuidv5 } from "uuid";
import { buildStepEnvelope } from "../../contract/step-envelope.js";
import { API_VERSIONS } from "../clients/arm/arm-clients.js";
import { bootstrapKubeconfig, bootstrapTokenSecret, poolBootstrapRbac } from "../clients/kube/index.js";
import type { NodeRecord, Pool } from "../clients/registry/model.js";
import type { Settings } from "../settings.js";
import { services, type Services } from "../../functions/composition-root.js";
import { buildNodePlan, type PlanStep } from "../node-plan/node-plan.js";
import { catalogFromSettings } from "../node-plan/artifact-catalog.js";
import { RETRY_AFTER_MARK } from "./azure-call.js";
import { TimingOverrides, type Timing } from "./timing.js";

/** What the saga knows about its node and pool: small, and free of secrets. */
export interface NodeContext {
  nodeId: string;
  pool: string;
  clusterResourceId: string;
  arc: { resourceGroupId: string; location: string; tags: Record<string, string> };
  /** Set for an adopted machine (created by azcmagent): the saga reads it and never deletes it. */
  adoptedMachineId?: string;
  roleGrants: { roleDefinitionId: string; scope: "cluster" | "arcResourceGroup" }[];
  arch: "amd64" | "arm64";
  immutable: boolean;
  /** Timing overrides from settings (tests, sandbox); read here so the saga gets them through its history. */
  timing?: Partial<Timing>;
}

export type CreatedObject =
  | { kind: "mailbox"; id: string }
  | { kind: "arcMachine"; id: string }
  | { kind: "roleAssignment"; id: string }
  | { kind: "bootstrapToken"; id: string; cluster: string }
  | { kind: "oneTimeSecret"; id: string }
  /** The Node object the kubelet registers: the saga caused it, so compensation removes it. */
  | { kind: "kubeNode"; id: string; cluster: string };

export function parseObjectRef(ref: string): CreatedObject {
  const colon = ref.indexOf(":");
  const kind = ref.slice(0, colon) as CreatedObject["kind"];
  const rest = ref.slice(colon + 1);
  if (kind === "bootstrapToken" || kind === "kubeNode") {
    const hash = rest.lastIndexOf("#");
    return { kind, cluster: rest.slice(0, hash), id: rest.slice(hash + 1) };
  }
  return { kind, id: rest } as CreatedObject;
}

export const objectRef = (o: CreatedObject): string => (o.kind === "bootstrapToken" || o.kind === "kubeNode" ? `${o.kind}:${o.cluster}#${o.id}` : `${o.kind}:${o.id}`);

export const MANAGED_BY = "flexnode-onboarding";
/** Any stable namespace works; what matters is that the name covers scope, principal and role. */
const ROLE_ASSIGNMENT_NAMESPACE = "5e0c8f2a-6f0e-4f7b-9a53-2f1d8c3b7a10";
export const BOOTSTRAP_SECRET_REF = "bootstrap-kubeconfig";

export const subscriptionOf = (id: string): string => /^\/subscriptions\/([^/]+)/i.exec(id)![1]!;
export const machineIdFor = (ctx: Pick<NodeContext, "arc" | "nodeId" | "adoptedMachineId">): string => ctx.adoptedMachineId ?? `${ctx.arc.resourceGroupId}/providers/Microsoft.HybridCompute/machines/${ctx.nodeId}`;

async function record(nodeId: string, obj: CreatedObject, change: "add" | "remove"): Promise<void> {
  if (!nodeId) return;
  const { registry } = await services();
  const node = await registry.getNode(nodeId);
  if (!node) return;
  const ref = objectRef(obj);
  await registry.updateNode(node, (n) => {
    const has = n.createdObjects.includes(ref);
    if (change === "add" ? has : !has) return undefined;
    return { createdObjects: change === "add" ? [...n.createdObjects, ref] : n.createdObjects.filter((r) => r !== ref) };
  }, "service:onboard", change === "add" ? "node.object-created" : "node.object-removed");
}

// ---------------------------------------------------------------- registry

export const reserve = df.app.activity("onboard_reserve", {
  handler: throttleAware(async (input: { nodeId: string; pool: string }): Promise<NodeContext> => {
    const { registry, settings } = await services();
    const node = await registry.getNodeInPool(input.pool, input.nodeId);
    const pool = await registry.getPool(input.pool);
    if (!node || !pool) throw new Error(`node ${input.nodeId} or pool ${input.pool} is not in the registry`);
    if (node.status === "Enrolling") await registry.updateNode(node, () => ({ status: "Onboarding", lastError: undefined }), "service:onboard", "node.onboarding", { expect: ["Enrolling"] });
    else if (node.status !== "Onboarding") throw new Error(`node ${input.nodeId} is ${node.status}; only an enrolling node can be onboarded`);
    return nodeContextOf(node, pool, settings);
  }),
});

function nodeContextOf(node: NodeRecord, pool: Pool, settings: Settings): NodeContext {
  const i = node.facts.immutable;
  return {
    nodeId: node.nodeId,
    pool: pool.name,
    clusterResourceId: pool.clusterResourceId,
    arc: { resourceGroupId: pool.arc.resourceGroupId, location: pool.arc.location, tags: pool.arc.tags },
    ...(pool.arc.mode === "adopt" && node.arcMachineId ? { adoptedMachineId: node.arcMachineId } : {}),
    roleGrants: pool.roleGrants,
    arch: node.facts.arch,
    immutable: i.readOnlyUsr || i.ostree || i.flatcar || i.kairos || i.bootc,
    timing: timingOverrides(settings),
  };
}

const timingOverrides = (settings: Settings): Partial<Timing> | undefined => (settings.SAGA_TIMING ? TimingOverrides.parse(JSON.parse(settings.SAGA_TIMING)) : undefined);

export const markReady = df.app.activity("onboard_markReady", {
  handler: throttleAware(async (input: { nodeId: string }): Promise<void> => {
    const { registry } = await services();
    const node = (await registry.getNode(input.nodeId))!;
    await registry.updateNode(node, (n) => (n.status === "Ready" ? undefined : { status: "Ready", lastError: undefined }), "service:onboard", "node.ready");
  }),
});

export const markFailed = df.app.activity("onboard_markFailed", {
  handler: throttleAware(async (input: { nodeId: string; code: string; message: string; removed: string[]; remaining: string[] }): Promise<void> => {
    const { registry, now } = await services();
    const node = await registry.getNode(input.nodeId);
    if (!node) return;
    const message = `${input.message}${input.removed.length ? `; removed: ${input.removed.join(", ")}` : ""}${input.remaining.length ? `; NOT removed: ${input.remaining.join(", ")}` : ""}`;
    await registry.updateNode(node, () => ({ status: "Failed", lastError: { code: input.code, message, at: now().toISOString() } }), "service:onboard", "node.failed");
  }),
});

// ---------------------------------------------------------------- mailbox

export const openMailbox = df.app.activity("onboard_openMailbox", {
  handler: throttleAware(async (input: { nodeId: string }): Promise<CreatedObject> => {
    const { queue } = await (await services()).mailbox().open(input.nodeId);
    const obj: CreatedObject = { kind: "mailbox", id: queue };
    await record(input.nodeId, obj, "add");
    return obj;
  }),
});

/** Builds the envelope for one step attempt from the plan and sends it; the plan is rebuilt here, not kept in history. */
export const sendStep = df.app.activity("onboard_sendStep", {
  handler: throttleAware(async (input: { context: NodeContext; sagaId: string; stepId: string; attempt: number; timeoutMs: number; kubernetesVersion?: string; apiServer?: string }): Promise<void> => {
    const svc = await services();
    const node = (await svc.registry.getNode(input.context.nodeId))!;
    // `reset` is not a plan step: it undoes whatever the agent's manifest records, so it needs no cluster details.
    const reset = input.stepId === "reset";
    const caPem = reset ? "" : (await svc.kube(input.context.clusterResourceId)).caPem;
    const step = reset ? undefined : planFor(input.context, node, { kubernetesVersion: input.kubernetesVersion!, apiServer: input.apiServer!, caPem }, svc.settings.ARTIFACT_CATALOG).find((s) => s.stepId === input.stepId);
    if (!step && !reset) throw new Error(`no step ${input.stepId} in the plan`);
    // A wait on the node must end before the saga stops waiting for its result (scaled timing: tests, the sandbox).
    const params = step?.kind === "waitFor" && typeof step.params.timeoutSeconds === "number" ? { ...step.params, timeoutSeconds: Math.max(1, Math.floor((step.params.timeoutSeconds * input.timeoutMs) / step.timeoutMs)) } : step?.params;
    const issuedAt = svc.now();
    const envelope = buildStepEnvelope(
      {
        nodeId: node.nodeId,
        sagaId: input.sagaId,
        stepId: input.stepId,
        attempt: input.attempt,
        kind: reset ? "reset" : step!.kind,
        params: reset ? { scope: "all" } : params!,
        issuedAt,
        // Valid while the saga still waits for it: a node that picks it up later must not act on it.
        expiresAt: new Date(issuedAt.getTime() + input.timeoutMs),
      },
      { privateKey: svc.signingKey() },
    );
    await svc.mailbox().send(envelope);
  }),
});

export const planSteps = df.app.activity("onboard_planSteps", {
  handler: throttleAware(async (input: { context: NodeContext; kubernetesVersion: string; apiServer: string }): Promise<Pick<PlanStep, "stepId" | "timeoutMs" | "maxAttempts">[]> => {
    const svc = await services();
    const node = (await svc.registry.getNode(input.context.nodeId))!;
    const { caPem } = await svc.kube(input.context.clusterResourceId);
    return planFor(input.context, node, { ...input, caPem }, svc.settings.ARTIFACT_CATALOG).map(({ stepId, timeoutMs, maxAttempts }) => ({ stepId, timeoutMs, maxAttempts }));
  }),
});

function planFor(context: NodeContext, node: NodeRecord, cluster: { kubernetesVersion: string; apiServer: string; caPem: string }, catalog: string | undefined): PlanStep[] {
  return buildNodePlan({
    nodeName: node.nodeId,
    arch: context.arch,
    immutable: context.immutable,
    kubernetesVersion: cluster.kubernetesVersion,
    apiServer: cluster.apiServer,
    clusterDns: "10.0.0.10",
    labels: node.labels,
    taints: node.taints,
    bootstrapSecretRef: BOOTSTRAP_SECRET_REF,
    clusterCaPem: cluster.caPem,
    catalog: catalogFromSettings(catalog),
  });
}

// ---------------------------------------------------------------- Arc

/** PUT of the Arc machine (sync 200); returns its id and, when ARM already has it, the identity's principal. */
export const putArcMachine = df.app.activity("onboard_putArcMachine", {
  handler: throttleAware(async (input: { context: NodeContext }): Promise<{ machine: CreatedObject; principalId: string | null }> => {
    const { context } = input;
    const id = machineIdFor(context);
    const resources = (await services()).arm().resources(subscriptionOf(id)).resources;
    const body = {
      location: context.arc.location,
      identity: { type: "SystemAssigned" as const },
      tags: { ...context.arc.tags, "managed-by": MANAGED_BY, "flexnode-node": context.nodeId, "flexnode-pool": context.pool },
      properties: { osType: "linux" },
    };
    // Recorded before the PUT: a crash between the PUT and the record must still leave compensation knowing the machine.
    const machine: CreatedObject = { kind: "arcMachine", id };
    await record(context.nodeId, machine, "add");
    const result = await resources.beginCreateOrUpdateByIdAndWait(id, API_VERSIONS.hybridComputeMachines, body, { updateIntervalInMs: 1_000 });
    return { machine, principalId: result.identity?.principalId ?? null };
  }),
});

export const getArcPrincipal = df.app.activity("onboard_getArcPrincipal", {
  handler: throttleAware(async (input: { machineId: string }): Promise<string | null> => {
    const resources = (await services()).arm().resources(subscriptionOf(input.machineId)).resources;
    const m = await resources.getById(input.machineId, API_VERSIONS.hybridComputeMachines);
    return m.identity?.principalId ?? null;
  }),
});

// ---------------------------------------------------------------- access

/**
 * One role assignment, named deterministically over scope + principal + role so a retried PUT is the same
 * assignment. PrincipalNotFound (the new identity not replicated yet) is thrown for the saga's retry policy;
 * RoleAssignmentExists (the same grant under another name) is adopted by looking it up.
 */
export const grantRole = df.app.activity("onboard_grantRole", {
  handler: throttleAware(async (input: { nodeId: string; scope: string; roleDefinitionGuid: string; principalId: string }): Promise<CreatedObject> => {
    const sub = subscriptionOf(input.scope);
    const authz = (await services()).arm().authorization(sub);
    const name = uuidv5(`${input.scope.toLowerCase()}|${input.principalId.toLowerCase()}|${input.roleDefinitionGuid.toLowerCase()}`, ROLE_ASSIGNMENT_NAMESPACE);
    const roleDefinitionId = `/subscriptions/${sub}/providers/Microsoft.Authorization/roleDefinitions/${input.roleDefinitionGuid}`;
    const obj: CreatedObject = { kind: "roleAssignment", id: `${input.scope}/providers/Microsoft.Authorization/roleAssignments/${name}` };
    await record(input.nodeId, obj, "add");
    try {
      await authz.roleAssignments.create(input.scope, name, { roleDefinitionId, principalId: input.principalId, principalType: "ServicePrincipal", description: `flexnode node ${input.nodeId}` });
      return obj;
    } catch (error) {
      if (!(isRestError(error) && error.code === "RoleAssignmentExists")) throw error;
    }
    for await (const existing of authz.roleAssignments.listForScope(input.scope, { filter: `principalId eq '${input.principalId}'` })) {
      if (existing.roleDefinitionId?.toLowerCase().endsWith(input.roleDefinitionGuid.toLowerCase()) && existing.scope?.toLowerCase() === input.scope.toLowerCase()) {
        const adopted: CreatedObject = { kind: "roleAssignment", id: existing.id! };
        await record(input.nodeId, obj, "remove");
        await record(input.nodeId, adopted, "add");
        return adopted;
      }
    }
    throw new Error(`RoleAssignmentExists for ${input.principalId} at ${input.scope}, but no such assignment is listed`);
  }),
});

// ---------------------------------------------------------------- Kubernetes

export const clusterInfo = df.app.activity("onboard_clusterInfo", {
  handler: throttleAware(async (input: { clusterResourceId: string }): Promise<{ apiServer: string; kubernetesVersion: string }> => {
    const svc = await services();
    const m = /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/Microsoft\.ContainerService\/managedClusters\/([^/]+)$/i.exec(input.clusterResourceId)!;
    const cluster = await svc.arm().containerService(m[1]!).managedClusters.get(m[2]!, m[3]!);
    const { server } = await svc.kube(input.clusterResourceId);
    return { apiServer: server, kubernetesVersion: cluster.currentKubernetesVersion ?? cluster.kubernetesVersion ?? "1.31.2" };
  }),
});

/** Per-pool RBAC: the pool's bootstrap group may create CSRs and get node-client CSRs approved, nothing more. */
export const ensurePoolRbac = df.app.activity("onboard_ensurePoolRbac", {
  handler: throttleAware(async (input: { clusterResourceId: string; pool: string }): Promise<void> => {
    const { client } = await (await services()).kube(input.clusterResourceId);
    for (const binding of poolBootstrapRbac(input.pool).bindings) await client.applyClusterRoleBinding(binding);
  }),
});

/**
 * A single-use bootstrap token for this saga run: its id derives from the run (so a retry finds the same Secret), its
 * secret is random and stored sealed as the node's one-time secret *before* the Secret exists, so a retried activity
 * reuses it instead of minting a second token.
 */
export const issueBootstrapToken = df.app.activity("onboard_issueBootstrapToken", {
  handler: throttleAware(async (input: { context: NodeContext; runId: string; ttlMs: number }): Promise<CreatedObject[]> => {
    const svc = await services();
    const { nodeId, pool, clusterResourceId } = input.context;
    const { client, server, caPem } = await svc.kube(clusterResourceId);
    const expiresAt = new Date(svc.now().getTime() + input.ttlMs);
    const tokenId = createHash("sha256").update(`${nodeId}/${input.runId}`).digest("hex").replace(/[^a-z0-9]/g, "").slice(0, 6);
    const fresh = `${tokenId}.${randomBytes(12).toString("hex").slice(0, 16)}`;
    const token = await svc.secrets().putIfAbsent(nodeId, `${BOOTSTRAP_SECRET_REF}.token`, fresh, expiresAt);
    const secretObj: CreatedObject = { kind: "oneTimeSecret", id: BOOTSTRAP_SECRET_REF };
    const tokenObj: CreatedObject = { kind: "bootstrapToken", id: `bootstrap-token-${token.split(".")[0]}`, cluster: clusterResourceId };
    await record(nodeId, secretObj, "add");
    await record(nodeId, tokenObj, "add");
    const kubeconfig = bootstrapKubeconfig({ server, caPem, token, clusterName: clusterResourceId.split("/").pop()! });
    await svc.secrets().putIfAbsent(nodeId, BOOTSTRAP_SECRET_REF, kubeconfig, expiresAt);
    const { secret } = bootstrapTokenSecret({ pool, nodeId, expiresAt, token });
    await client.createSecret("kube-system", secret);
    return [secretObj, tokenObj];
  }),
});

/** Records, before the kubelet can start, that a Node object may appear in the cluster under the node's name. */
export const expectKubeNode = df.app.activity("onboard_expectKubeNode", {
  handler: throttleAware(async (input: { nodeId: string; cluster: string }): Promise<CreatedObject> => {
    const obj: CreatedObject = { kind: "kubeNode", id: input.nodeId, cluster: input.cluster };
    await record(input.nodeId, obj, "add");
    return obj;
  }),
});

export const checkNodeReady = df.app.activity("onboard_checkNodeReady", {
  handler: throttleAware(async (input: { clusterResourceId: string; nodeName: string }): Promise<boolean> => {
    const { client } = await (await services()).kube(input.clusterResourceId);
    return (await client.getNode(input.nodeName))?.ready ?? false;
  }),
});

// ---------------------------------------------------------------- removal (finalize and compensation)

/**
 * What compensation must remove: everything recorded on the node, in creation order. Activities record an object
 * before the call that creates it, so this includes objects whose creating call failed or crashed half-way — the
 * saga's own list cannot know those. Removing an absent object is done, so over-approximating is safe.
 */
export const recordedObjects = df.app.activity("onboard_recordedObjects", {
  handler: throttleAware(async (input: { nodeId: string }): Promise<CreatedObject[]> => {
    const node = await (await services()).registry.getNode(input.nodeId);
    return (node?.createdObjects ?? []).map(parseObjectRef);
  }),
});

/** Removes one created object; absent is done. Records the removal on the node. */
export const removeObject = df.app.activity("onboard_removeObject", {
  handler: throttleAware(async (input: { nodeId: string; object: CreatedObject }): Promise<void> => removeCreatedObject(await services(), input.nodeId, input.object)),
});

/** The one way anything the service created is removed (the sagas' activities and the sweeper call it). */
export async function removeCreatedObject(svc: Pick<Services, "mailbox" | "secrets" | "kube" | "arm">, nodeId: string, o: CreatedObject): Promise<void> {
  switch (o.kind) {
    case "mailbox":
      await svc.mailbox().close(nodeId);
      break;
    case "oneTimeSecret":
      await svc.secrets().remove(nodeId, o.id);
      await svc.secrets().remove(nodeId, `${o.id}.token`);
      break;
    case "bootstrapToken":
      await (await svc.kube(o.cluster)).client.deleteSecret("kube-system", o.id);
      break;
    case "kubeNode":
      await (await svc.kube(o.cluster)).client.deleteNode(o.id);
      break;
    case "roleAssignment":
      await absentIsDone(() => svc.arm().authorization(subscriptionOf(o.id)).roleAssignments.deleteById(o.id));
      break;
    case "arcMachine":
      await absentIsDone(() => svc.arm().resources(subscriptionOf(o.id)).resources.beginDeleteByIdAndWait(o.id, API_VERSIONS.hybridComputeMachines, { updateIntervalInMs: 1_000 }));
      break;
  }
  await record(nodeId, o, "remove");
}

/**
 * ARM answers 429 with Retry-After. The activity cannot wait (its time is wall time, and a worker slot), so it fails
 * with the hint in its message, which the saga reads from its history to wait at least that long (see azure-call.ts).
 */
function throttleAware<I, O>(handler: (input: I) => Promise<O>): (input: I) => Promise<O> {
  return async (input) => {
    try {
      return await handler(input);
    } catch (error) {
      if (isRestError(error) && error.statusCode === 429) {
        const seconds = Number(error.response?.headers.get("retry-after"));
        throw new Error(`${error.message} (throttled${Number.isFinite(seconds) ? `; ${RETRY_AFTER_MARK}${Math.round(seconds * 1000)}` : ""})`);
      }
      throw error;
    }
  };
}

async function absentIsDone(op: () => Promise<unknown>): Promise<void> {
  try {
    await op();
  } catch (error) {
    if (!(isRestError(error) && error.statusCode === 404)) throw error;
  }
}

// ---------------------------------------------------------------- offboarding

/** Marks the node Offboarding and tells the saga what it needs to reach the agent (if the node has a mailbox). */
export const offboardBegin = df.app.activity("offboard_begin", {
  handler: throttleAware(async (input: { nodeId: string; reason: string; actor: string }) => {
    const svc = await services();
    const node = await svc.registry.getNode(input.nodeId);
    if (!node) throw new Error(`node ${input.nodeId} is not in the registry`);
    if (node.status !== "Offboarding" && node.status !== "Offboarded") {
      await svc.registry.updateNode(node, () => ({ status: "Offboarding", lastError: { code: "Decommissioned", message: input.reason, at: svc.now().toISOString() } }), input.actor, "node.offboarding");
    }
    const pool = await svc.registry.getPool(node.pool);
    const hasMailbox = node.createdObjects.some((r) => r.startsWith("mailbox:"));
    if (!pool || !hasMailbox) return { hasMailbox: false, timing: timingOverrides(svc.settings) };
    const context = nodeContextOf(node, pool, svc.settings);
    return { hasMailbox, context, timing: context.timing };
  }),
});

/** What the sweeper's compensation needs to reach the agent: the node context when the node has a mailbox. */
export const compensationContext = df.app.activity("onboard_compensationContext", {
  handler: throttleAware(async (input: { nodeId: string }): Promise<{ context?: NodeContext; timing?: Partial<Timing> }> => {
    const svc = await services();
    const node = await svc.registry.getNode(input.nodeId);
    const pool = node && (await svc.registry.getPool(node.pool));
    if (!node || !pool || !node.createdObjects.some((r) => r.startsWith("mailbox:"))) return { timing: timingOverrides(svc.settings) };
    const context = nodeContextOf(node, pool, svc.settings);
    return { context, timing: context.timing };
  }),
});

export const offboardFinish = df.app.activity("offboard_finish", {
  handler: throttleAware(async (input: { nodeId: string; actor: string; removed: string[]; remaining: string[] }): Promise<void> => {
    const svc = await services();
    const node = (await svc.registry.getNode(input.nodeId))!;
    await svc.registry.updateNode(
      node,
      () => (input.remaining.length === 0 ? { status: "Offboarded" } : { status: "Offboarding", lastError: { code: "OffboardIncomplete", message: `NOT removed: ${input.remaining.join(", ")}`, at: svc.now().toISOString() } }),
      input.actor,
      input.remaining.length === 0 ? "node.offboarded" : "node.offboard-incomplete",
    );
  }),
});
