/**
 * The sweeper: the periodic pass that keeps the registry and Azure honest when a message, an event or a whole saga was
 * lost. It
 *  - marks enrolment tokens whose expiry has passed;
 *  - fails onboardings stuck beyond their deadline through the normal compensation path (terminate, then
 *    `compensateNode`), and nodes that claim to be onboarding with no saga left to finish them;
 *  - stops any other saga of a node (offboarding, compensation, an onboarding the node's status has left behind) that
 *    runs past the deadline, and resumes the offboarding of a node left `Offboarding` with none running (a start that
 *    was lost, a run stopped or failed, removal left incomplete);
 *  - reports the resources the service manages that no live node owns (Arc machines tagged managed-by, role
 *    assignments the service created at pool scopes, bootstrap-token Secrets labelled with a node, Node objects the
 *    kubelets registered with a node's label, nodes' mailbox queues) and, when SWEEP_REMOVE_ORPHANS is set, removes
 *    them the way compensation would;
 *  - frees pool slots no node holds;
 *  - purges expired request nonces and old result claims.
 * Every action is idempotent: a sweep that crashes half-way is finished by the next one.
 */
import { isRunning, type WorkflowClient } from "../clients/workflow-client.js";
import { MANAGED_BY, objectRef, parseObjectRef, type CreatedObject } from "../activities/created-objects.js";
import { isServiceRoleAssignment } from "../activities/access.js";
import { removeCreatedObject, type RemovalDeps } from "../activities/removal.js";
import { parseResourceGroupId, subscriptionOf, pathArg } from "../clients/arm/resource-id.js";
import { COMPENSATE_NODE, compensateInstanceId, type CompensateNodeInput } from "../onboard/compensate.js";
import { newRunId } from "../onboard/saga-run.js";
import { offboardInstanceId } from "../offboard/offboard-node.js";
import { startOffboarding } from "./decommission.js";
import { KUBELET_NODE_LABEL, MANAGED_BY_LABEL, MANAGED_BY_VALUE, NODE_ID_LABEL } from "../clients/kube/labels.js";
import { queueFor } from "../clients/mailbox/mailbox.js";
import { isWaiting } from "../clients/registry/in-flight.js";
import type { NodeRecord, NodeStatus, Pool } from "../clients/registry/model.js";
import type { Services } from "../services.js";

export const SWEEP_ACTOR = "service:sweeper";

/** Statuses whose recorded objects are still wanted. A Failed node's leftovers are what compensation could not remove. */
const OWNING: ReadonlySet<NodeStatus> = new Set(["Enrolling", "AwaitingApproval", "Onboarding", "Ready", "Offboarding"]);
const ONBOARDING: ReadonlySet<NodeStatus> = new Set(["Enrolling", "Onboarding"]);

export interface SweepOptions {
  /** A saga running longer than this, or a node onboarding this long without one, is failed. */
  sagaDeadlineMs: number;
  removeOrphans: boolean;
  /** Result claims older than this are purged. */
  claimRetentionMs: number;
}

export interface Orphan {
  ref: string;
  /** The node it was made for, when its name or tags say so. */
  nodeId?: string;
  reason: string;
}

export interface SweepReport {
  tokensExpired: string[];
  sagasFailed: { nodeId: string; reason: string }[];
  /** Sagas other than a failed onboarding that ran past the deadline and were terminated. */
  sagasStopped: { nodeId: string; instanceId: string; reason: string }[];
  /** Nodes left Offboarding with no offboarding running, whose offboarding was started again. */
  offboardingsResumed: { nodeId: string; reason: string }[];
  orphans: Orphan[];
  orphansRemoved: string[];
  orphansNotRemoved: { ref: string; error: string }[];
  claimsPurged: number;
  /** Pool slots no node held, freed (`<pool>/<slot row>`). */
  slotsReclaimed: string[];
}

/** What the sweep uses: the registry, ARM and the clusters to find orphans, and what removing one takes. */
export type SweepServices = RemovalDeps & Pick<Services, "registry" | "arm" | "kube" | "now" | "settings">;

export async function sweep(svc: SweepServices, workflows: WorkflowClient, options: SweepOptions): Promise<SweepReport> {
  const report: SweepReport = {
    tokensExpired: [],
    sagasFailed: [],
    sagasStopped: [],
    offboardingsResumed: [],
    orphans: [],
    orphansRemoved: [],
    orphansNotRemoved: [],
    claimsPurged: 0,
    slotsReclaimed: [],
  };
  const now = svc.now();

  for (const token of await all((c) => svc.registry.tokens.list({ continuationToken: c }))) {
    if (
      !token.expiredAt &&
      !token.revokedAt &&
      Date.parse(token.expiresAt) <= now.getTime() &&
      (await svc.registry.tokens.expire(token.tokenId, SWEEP_ACTOR))
    ) {
      report.tokensExpired.push(token.tokenId);
    }
  }

  const nodes = await all((c) => svc.registry.nodes.list({ continuationToken: c }));
  for (const node of nodes) {
    const stopped = await stopOverdue(svc, workflows, node, now, options.sagaDeadlineMs);
    report.sagasStopped.push(...stopped);
    // A run stopped just now may still be winding down (termination is asynchronous): the next sweep takes it up.
    if (stopped.length > 0) continue;
    if (ONBOARDING.has(node.status)) {
      const reason = await failIfStuck(svc, workflows, node, now, options.sagaDeadlineMs);
      if (reason) report.sagasFailed.push({ nodeId: node.nodeId, reason });
    }
    if (node.status === "Offboarding") {
      const reason = await resumeOffboarding(svc, workflows, node, now, options.sagaDeadlineMs);
      if (reason) report.offboardingsResumed.push({ nodeId: node.nodeId, reason });
    }
  }

  report.orphans = await findOrphans(svc);
  if (options.removeOrphans) {
    for (const orphan of report.orphans) {
      try {
        // An Arc machine's deletion is only started here: ARM finishes it, and a later sweep finds it gone.
        const progress = await removeCreatedObject(svc, orphan.nodeId ?? "", parseObjectRef(orphan.ref));
        await svc.registry.audit.write({
          actor: SWEEP_ACTOR,
          action: "orphan.removed",
          objectType: "node",
          objectId: orphan.nodeId ?? "unknown",
          details: { ref: orphan.ref, reason: orphan.reason, ...(progress.done ? {} : { deletionInProgress: true }) },
        });
        report.orphansRemoved.push(orphan.ref);
      } catch (error) {
        report.orphansNotRemoved.push({ ref: orphan.ref, error: error instanceof Error ? error.message : String(error) });
      }
    }
  } else {
    for (const orphan of report.orphans) {
      await svc.registry.audit.write({
        actor: SWEEP_ACTOR,
        action: "orphan.found",
        objectType: "node",
        objectId: orphan.nodeId ?? "unknown",
        details: { ref: orphan.ref, reason: orphan.reason },
      });
    }
  }

  // Slots no node holds (none should exist: slots move in the nodes' own transactions) go back to their pools.
  for (const pool of await all((c) => svc.registry.pools.list({ continuationToken: c }))) {
    report.slotsReclaimed.push(...(await svc.registry.nodes.reclaimSlots(pool.name)).map((slot) => `${pool.name}/${slot}`));
  }
  report.claimsPurged = await svc.registry.purgeExpired(new Date(now.getTime() - options.claimRetentionMs));
  return report;
}

/** Fails the node's onboarding through compensation when it is past its deadline; returns why, or undefined. */
async function failIfStuck(svc: SweepServices, workflows: WorkflowClient, node: NodeRecord, now: Date, deadlineMs: number): Promise<string | undefined> {
  const compensation = compensateInstanceId(node.nodeId);
  if (isRunning((await workflows.describe(compensation))?.status)) return undefined;
  const saga = await workflows.describe(node.nodeId);
  const running = isRunning(saga?.status);
  // Waiting for a pool slot is not being stuck (the saga bounds that wait itself), and the deadline of a node that
  // waited counts from when it took its slot. A saga stuck before its wait (its node waiting all the same) is stuck.
  if (running && isWaiting(node.slot) && (saga!.customStatus as { phase?: unknown } | undefined)?.phase === "awaitSlot") return undefined;
  const slotSince = node.slotSince ? new Date(node.slotSince) : undefined;
  const since = running ? (slotSince && slotSince > saga!.createdAt ? slotSince : saga!.createdAt) : new Date(node.updatedAt);
  if (now.getTime() - since.getTime() <= deadlineMs) return undefined;
  const minutes = Math.round(deadlineMs / 60_000);
  const reason = running
    ? `the onboarding saga ran past its ${minutes}-minute deadline`
    : `the node was ${node.status} for over ${minutes} minutes with no onboarding saga running (${saga ? `saga ${saga.status}` : "no saga"})`;
  if (running) await workflows.terminate(node.nodeId, `sweeper: ${reason}`);
  const input: CompensateNodeInput = { nodeId: node.nodeId, code: "SagaDeadlineExceeded", message: reason, run: newRunId(), claimFirst: true };
  await workflows.start(COMPENSATE_NODE, { instanceId: compensation, input });
  await svc.registry.audit.write({ actor: SWEEP_ACTOR, action: "node.saga-deadline", objectType: "node", objectId: node.nodeId, details: { reason } });
  return reason;
}

/**
 * Terminates the node's offboarding and compensation runs, and an onboarding its status has left behind, that run
 * past the deadline (an onboarding of a node still onboarding is failIfStuck's: it also compensates).
 */
async function stopOverdue(
  svc: SweepServices,
  workflows: WorkflowClient,
  node: NodeRecord,
  now: Date,
  deadlineMs: number,
): Promise<SweepReport["sagasStopped"]> {
  const instances = [offboardInstanceId(node.nodeId), compensateInstanceId(node.nodeId), ...(ONBOARDING.has(node.status) ? [] : [node.nodeId])];
  const stopped: SweepReport["sagasStopped"] = [];
  for (const instanceId of instances) {
    const run = await workflows.describe(instanceId);
    if (!run || !isRunning(run.status) || now.getTime() - run.createdAt.getTime() <= deadlineMs) continue;
    const reason = `${instanceId} ran past its ${Math.round(deadlineMs / 60_000)}-minute deadline`;
    await workflows.terminate(instanceId, `sweeper: ${reason}`);
    await svc.registry.audit.write({
      actor: SWEEP_ACTOR,
      action: "node.saga-deadline",
      objectType: "node",
      objectId: node.nodeId,
      details: { instanceId, reason },
    });
    stopped.push({ nodeId: node.nodeId, instanceId, reason });
  }
  return stopped;
}

/**
 * Starts the offboarding of a node left Offboarding with none running. At once when the last run ended without
 * finishing (failed, terminated); after the deadline when there was none (the start may be a moment behind the
 * status) or it completed with objects left (so a retry of the removal waits a deadline, not a sweep).
 */
async function resumeOffboarding(svc: SweepServices, workflows: WorkflowClient, node: NodeRecord, now: Date, deadlineMs: number): Promise<string | undefined> {
  const run = await workflows.describe(offboardInstanceId(node.nodeId));
  if (run && isRunning(run.status)) return undefined;
  const cutShort = run?.status === "Failed" || run?.status === "Terminated" || run?.status === "Canceled";
  if (!cutShort && now.getTime() - Date.parse(node.updatedAt) <= deadlineMs) return undefined;
  const reason = run
    ? `the node was Offboarding and its offboarding had ended ${run.status}${node.lastError ? ` (${node.lastError.code})` : ""}`
    : `the node was Offboarding for over ${Math.round(deadlineMs / 60_000)} minutes with no offboarding started`;
  await startOffboarding({ workflows }, node.nodeId, { reason: `sweeper: ${reason}`, actor: SWEEP_ACTOR });
  await svc.registry.audit.write({ actor: SWEEP_ACTOR, action: "node.offboarding-resumed", objectType: "node", objectId: node.nodeId, details: { reason } });
  return reason;
}

/**
 * Managed resources that no node in an owning status has recorded. The resources are listed before the nodes are read:
 * a saga records an object before creating it, so anything a listing shows was already recorded when the nodes are
 * read, and an object being created right now is never mistaken for an orphan.
 */
async function findOrphans(svc: SweepServices): Promise<Orphan[]> {
  const candidates: { object: CreatedObject; nodeId?: string; what: string }[] = [];
  const serviceId = svc.settings.SERVICE_PRINCIPAL_ID?.toLowerCase();
  const pools = await all((c) => svc.registry.pools.list({ continuationToken: c }));
  const clusters = new Set<string>();
  const roleAssignments: { id: string; createdBy?: string; ours: boolean }[] = [];
  for (const pool of pools) {
    clusters.add(pool.clusterResourceId);
    for (const m of await managedMachines(svc, pool)) candidates.push({ object: { kind: "arcMachine", id: m.id }, nodeId: m.nodeId, what: "Arc machine" });
    for (const scope of [pool.clusterResourceId, pool.arc.resourceGroupId]) {
      for await (const ra of svc.arm().authorization(subscriptionOf(scope)).roleAssignments.listForScope(pathArg(scope))) {
        if (ra.id && ra.scope?.toLowerCase() === scope.toLowerCase())
          roleAssignments.push({ id: ra.id, createdBy: ra.createdBy?.toLowerCase(), ours: isServiceRoleAssignment(ra, serviceId) });
      }
    }
  }
  for (const cluster of clusters) {
    const { client } = await svc.kube(cluster);
    for (const secret of await client.listSecrets("kube-system", `${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE}`)) {
      if (secret.name.startsWith("bootstrap-token-"))
        candidates.push({ object: { kind: "bootstrapToken", id: secret.name, cluster }, nodeId: secret.labels[NODE_ID_LABEL], what: "bootstrap token" });
    }
    // A Node object only the label ties to a node of ours: its name must be that node's too (the saga records the
    // Node under the node's id), so a Node that merely copied the label is never taken for one of ours.
    for (const kubeNode of await client.listNodes(KUBELET_NODE_LABEL)) {
      if (kubeNode.labels[KUBELET_NODE_LABEL] === kubeNode.name)
        candidates.push({ object: { kind: "kubeNode", id: kubeNode.name, cluster }, nodeId: kubeNode.name, what: "Node object" });
    }
  }
  for (const nodeId of await svc.mailbox().nodesWithQueues())
    candidates.push({ object: { kind: "mailbox", id: queueFor(nodeId) }, nodeId, what: "mailbox queue" });

  const nodes = await all((c) => svc.registry.nodes.list({ continuationToken: c }));
  const owned = new Set(nodes.filter((n) => OWNING.has(n.status)).flatMap((n) => n.createdObjects.map((r) => r.toLowerCase())));
  const recordedBy = new Map<string, NodeRecord>();
  for (const n of nodes) for (const r of n.createdObjects) recordedBy.set(r.toLowerCase(), n);
  // Role grants are the service's when it created them, or a node recorded them under the service's name for them;
  // others at the same scopes belong to someone else and are never touched — a record from before grants were told
  // apart may hold someone else's, adopted on RoleAssignmentExists (removal.ts decides by the same rule).
  for (const ra of roleAssignments) {
    const ref = objectRef({ kind: "roleAssignment", id: ra.id }).toLowerCase();
    if ((recordedBy.has(ref) && ra.ours) || (serviceId !== undefined && ra.createdBy === serviceId))
      candidates.push({ object: { kind: "roleAssignment", id: ra.id }, what: "role assignment" });
  }
  const orphans: Orphan[] = [];
  for (const c of candidates) {
    const ref = objectRef(c.object);
    if (owned.has(ref.toLowerCase())) continue;
    const node = recordedBy.get(ref.toLowerCase()) ?? nodes.find((n) => n.nodeId === c.nodeId);
    orphans.push({
      ref,
      nodeId: node?.nodeId ?? c.nodeId,
      reason: node ? `${c.what} of node ${node.nodeId}, which is ${node.status}` : `${c.what} of no registered node`,
    });
  }
  return orphans;
}

/** The pool's Arc machines the service created (tag managed-by), with the node each was made for. */
async function managedMachines(svc: SweepServices, pool: Pool): Promise<{ id: string; nodeId?: string }[]> {
  const { subscriptionId, resourceGroup } = parseResourceGroupId(pool.arc.resourceGroupId);
  const machines: { id: string; nodeId?: string }[] = [];
  for await (const machine of svc.arm().hybridCompute(subscriptionId).machines.listByResourceGroup(resourceGroup)) {
    if (machine.tags?.["managed-by"] === MANAGED_BY && machine.id) machines.push({ id: machine.id, nodeId: machine.tags["flexnode-node"] });
  }
  return machines;
}

async function all<T>(page: (continuationToken: string | undefined) => Promise<{ items: T[]; continuationToken?: string }>): Promise<T[]> {
  const items: T[] = [];
  let token: string | undefined;
  for (let i = 0; i < 10_000; i++) {
    const p = await page(token);
    items.push(...p.items);
    token = p.continuationToken;
    if (!token) return items;
  }
  throw new Error("more than 10,000 pages");
}
