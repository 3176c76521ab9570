/**
 * What the sagas know about a node and its pool: small, free of secrets, and built from the registry by the
 * activities that begin a saga (reserve, offboardBegin, compensationContext), so history carries it and nothing more.
 */
import { machineIdIn } from "../clients/arm/resource-id.js";
import type { NodeRecord, PoolRecord } from "../clients/registry/model.js";
import { timingFrom, TimingOverrides, type Timing } from "../onboard/timing.js";
import type { Settings } from "../settings.js";

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
  /**
   * The node's labels and taints as reserved, for its plan: the steps are built from them on every send, so carrying
   * them here saves a node read per send. Absent in histories written before they were carried (read then).
   */
  labels?: NodeRecord["labels"];
  taints?: NodeRecord["taints"];
  /**
   * The saga's timing in full — production's with the settings' overrides (tests, sandbox) — read here so the saga
   * gets it through its history: a replay after a deploy that changed the production values still sees the run's own.
   * Histories written before it was carried in full hold only the overrides (the saga fills in production's then).
   */
  timing?: Partial<Timing>;
}

/** The node's Arc machine: the adopted one, or the one the service creates under the node's name. */
export const machineIdFor = (ctx: Pick<NodeContext, "arc" | "nodeId" | "adoptedMachineId">): string =>
  ctx.adoptedMachineId ?? machineIdIn(ctx.arc.resourceGroupId, ctx.nodeId);

export function nodeContextOf(node: NodeRecord, pool: PoolRecord, settings: Settings): NodeContext {
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
    labels: node.labels,
    taints: node.taints,
    timing: effectiveTiming(settings),
  };
}

/** `SAGA_TIMING` parsed (tests and the sandbox); undefined in production. */
export const timingOverrides = (settings: Settings): Partial<Timing> | undefined =>
  settings.SAGA_TIMING ? TimingOverrides.parse(JSON.parse(settings.SAGA_TIMING)) : undefined;

/**
 * The timing a saga starting now runs by, in full. Only the activities that begin a saga read it, so it reaches the
 * saga through history and never from the code's constants on a replay.
 */
export const effectiveTiming = (settings: Settings): Timing => timingFrom(timingOverrides(settings));
