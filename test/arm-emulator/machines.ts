/**
 * Microsoft.HybridCompute/machines: the Arc machine resource as ARM serves it to a caller that pre-creates machines
 * without an agent. PUT is synchronous and answers 200 for both create and update (the modular SDK accepts nothing
 * else); DELETE is synchronous before api-version 2025-01-13 and a 202 LRO from then on. Every machine has a
 * system-assigned identity whose principal survives re-PUTs, is new after a re-create, and is deleted with the
 * machine while role assignments naming it stay behind.
 */
import { z } from "zod";
import type { Clock } from "../support/index.js";
import { apiVersionBefore } from "./api-version.js";
import { ArmError, armErrors } from "./arm-error.js";
import type { Caller } from "./credential.js";
import type { Directory } from "./directory.js";
import type { ResourceEvents } from "./event-grid.js";
import type { Operations } from "./operations.js";
import { pageOf } from "./paging.js";
import { checkMachinePatch, checkMachinePut, MACHINE_STATUSES, type MachineStatus } from "./machine-schema.js";
import { idKey, machineResourceId } from "./resource-id.js";
import type { RequestContext, Route } from "./router.js";
import type { Tenancy } from "./tenancy.js";
import type { HandlerResult } from "./wire.js";

export const MACHINE_TYPE = "Microsoft.HybridCompute/machines";
const NAMESPACE = "Microsoft.HybridCompute";
/** First api-version whose DELETE is a long-running operation. */
export const MACHINE_ASYNC_DELETE_API_VERSION = "2025-01-13";
const MACHINE_NAME = /^[a-zA-Z0-9-_.]{1,54}$/;

export type { MachineStatus } from "./machine-schema.js";

export interface MachineRecord {
  id: string;
  name: string;
  subscriptionId: string;
  resourceGroup: string;
  location: string;
  tags: Record<string, string> | null;
  kind: string | null;
  /** Writable properties as last PUT/PATCHed; read-only ones are rendered from the fields below. */
  properties: Record<string, unknown>;
  principalId: string;
  tenantId: string;
  provisioningState: "Succeeded" | "Deleting";
  /** Null until an agent connects, as ARM reports a machine created without one. */
  status: MachineStatus | null;
  agentVersion: string | null;
  lastStatusChange: number | null;
  createdAt: number;
  createdBy: Caller;
  lastModifiedAt: number;
  lastModifiedBy: Caller;
}

export interface MachineDeleteBehaviour {
  /** Status polls answered InProgress before an async delete completes (default 1, as in recorded traffic). */
  inProgressPolls: number;
  /**
   * Run the async delete for this much emulated time instead, however often it is polled: the realistic mode, where
   * only waiting (the clock) ends it.
   */
  runForMs?: number;
  /**
   * Retry-After (seconds) on the 202 and on every InProgress answer. Default 200, the value of the published example
   * (azure-rest-api-specs hybridcompute stable/2025-01-13/examples/machine/Machines_Delete.json at
   * 0fab7d2318277308e6ac552937b07dc68d30c30d); the SDK poller sleeps it out in wall time, so tests that poll with the
   * SDK set 0.
   */
  retryAfterSeconds: number;
}

export interface MachinesDeps {
  clock: Clock;
  tenancy: Tenancy;
  directory: Directory;
  operations: Operations;
  events: ResourceEvents;
  newId: () => string;
  tenantId: string;
  pageSize: number;
  deleteBehaviour: MachineDeleteBehaviour;
}

const tagsSchema = z.record(z.string(), z.string());

/**
 * ARM's tag limits (tag-resources.md, "Limitations"): 50 per resource, names up to 512 characters without < > % & \ ?
 * /, values up to 256. The limits are documented; the error codes are not, except InvalidTagNameCharacters, so tests
 * should hold to the status and the code's prefix, not the exact code.
 */
function checkTags(tags: Record<string, string> | null | undefined): void {
  if (!tags) return;
  const names = Object.keys(tags);
  if (names.length > 50) throw new ArmError(400, "InvalidTagCount", `The resource has ${names.length} tags; at most 50 tag name/value pairs are allowed.`);
  const reserved = names.filter((n) => /[<>%&\\?/]/.test(n));
  if (reserved.length > 0)
    throw new ArmError(
      400,
      "InvalidTagNameCharacters",
      `The tag names '${reserved.join(",")}' have reserved characters '<,>,%,&,\\,?,/' or control characters.`,
    );
  const longName = names.find((n) => n.length > 512);
  if (longName !== undefined)
    throw new ArmError(400, "InvalidTagNameLength", `The tag name '${longName.slice(0, 40)}…' exceeds the maximum length of 512 characters.`);
  const longValue = names.find((n) => tags[n]!.length > 256);
  if (longValue !== undefined)
    throw new ArmError(400, "InvalidTagValueLength", `The value of tag '${longValue}' exceeds the maximum length of 256 characters.`);
}
const putBody = z.looseObject({
  location: z.string().optional(),
  tags: tagsSchema.nullish(),
  kind: z.string().nullish(),
  identity: z.looseObject({ type: z.string() }).nullish(),
  properties: z.record(z.string(), z.unknown()).nullish(),
});
const patchBody = z.looseObject({
  tags: tagsSchema.nullish(),
  properties: z.record(z.string(), z.unknown()).nullish(),
});

export class Machines {
  private readonly byId = new Map<string, MachineRecord>();

  constructor(private readonly deps: MachinesDeps) {}

  routes(): Route[] {
    const one = /^\/subscriptions\/(?<sub>[^/]+)\/resourceGroups\/(?<rg>[^/]+)\/providers\/Microsoft\.HybridCompute\/machines\/(?<name>[^/]+)$/i;
    const inGroup = /^\/subscriptions\/(?<sub>[^/]+)\/resourceGroups\/(?<rg>[^/]+)\/providers\/Microsoft\.HybridCompute\/machines$/i;
    const inSub = /^\/subscriptions\/(?<sub>[^/]+)\/providers\/Microsoft\.HybridCompute\/machines$/i;
    return [
      { name: "machines.get", method: "GET", pattern: one, handle: (ctx) => this.get(ctx) },
      { name: "machines.put", method: "PUT", pattern: one, handle: (ctx) => this.put(ctx) },
      { name: "machines.patch", method: "PATCH", pattern: one, handle: (ctx) => this.patch(ctx) },
      { name: "machines.delete", method: "DELETE", pattern: one, handle: (ctx) => this.delete(ctx) },
      { name: "machines.listByResourceGroup", method: "GET", pattern: inGroup, handle: (ctx) => this.listByResourceGroup(ctx) },
      { name: "machines.listBySubscription", method: "GET", pattern: inSub, handle: (ctx) => this.listBySubscription(ctx) },
      ...this.deps.operations.routes(NAMESPACE, "machines"),
    ];
  }

  list(): MachineRecord[] {
    return [...this.byId.values()];
  }

  find(id: string): MachineRecord | undefined {
    return this.byId.get(idKey(id));
  }

  /** Simulates the agent side: e.g. the node's azcmagent connecting. */
  setStatus(id: string, status: MachineStatus, agentVersion: string | null = null): void {
    if (!MACHINE_STATUSES.includes(status)) throw new Error(`${String(status)} is not a machine status (${MACHINE_STATUSES.join(", ")})`);
    const machine = this.find(id);
    if (!machine) throw new Error(`no machine ${id}`);
    machine.status = status;
    machine.agentVersion = agentVersion;
    machine.lastStatusChange = this.deps.clock.now();
  }

  reset(): void {
    this.byId.clear();
  }

  private get(ctx: RequestContext): HandlerResult {
    return { status: 200, body: this.render(this.require(ctx)) };
  }

  private put(ctx: RequestContext): HandlerResult {
    const { group, name, id } = this.target(ctx);
    if (!MACHINE_NAME.test(name)) {
      throw new ArmError(400, "InvalidResourceName", `The resource name '${name}' is invalid. It must match the pattern '^[a-zA-Z0-9-_\\.]{1,54}$'.`);
    }
    const parsed = putBody.safeParse(ctx.body ?? {});
    if (!parsed.success) throw armErrors.invalidRequestContent(parsed.error.issues[0]?.message ?? "invalid body");
    const body = parsed.data;
    if (body.location === undefined || body.location.trim() === "") {
      throw new ArmError(400, "LocationRequired", "The location property is required for this definition.");
    }
    if (body.identity && body.identity.type.toLowerCase() !== "systemassigned") {
      throw new ArmError(400, "InvalidIdentityType", `The identity type '${body.identity.type}' is not supported. Supported type: 'SystemAssigned'.`);
    }
    const now = this.deps.clock.now();
    const existing = this.byId.get(idKey(id));
    if (existing?.provisioningState === "Deleting") {
      throw armErrors.conflict(`The resource '${existing.id}' is being deleted and cannot be updated.`);
    }
    if (existing && normaliseLocation(existing.location) !== normaliseLocation(body.location)) {
      throw new ArmError(
        400,
        "InvalidResourceLocation",
        `The resource '${existing.name}' already exists in location '${existing.location}' in resource group '${group.name}'. A resource with the same name cannot be created in location '${body.location}'. Please select a new resource name.`,
      );
    }
    checkMachinePut(body, existing?.properties);
    checkTags(body.tags);
    const machine: MachineRecord = existing ?? this.create(group.subscriptionId, group.name, name, body.location, ctx.caller, now);
    // PUT replaces: tags and writable properties not sent are gone; identity and agent-reported state are kept.
    machine.tags = body.tags ?? null;
    machine.kind = body.kind ?? null;
    machine.properties = { ...(body.properties ?? {}) };
    machine.lastModifiedAt = now;
    machine.lastModifiedBy = ctx.caller;
    this.publish("write", machine, ctx, { created: existing === undefined });
    return { status: 200, body: this.render(machine) };
  }

  private patch(ctx: RequestContext): HandlerResult {
    const machine = this.require(ctx);
    const parsed = patchBody.safeParse(ctx.body ?? {});
    if (!parsed.success) throw armErrors.invalidRequestContent(parsed.error.issues[0]?.message ?? "invalid body");
    // PATCH follows PUT's rule for a resource being deleted (ARM RPC, "Updating using PATCH").
    if (machine.provisioningState === "Deleting") throw armErrors.conflict(`The resource '${machine.id}' is being deleted and cannot be updated.`);
    checkMachinePatch(parsed.data);
    checkTags(parsed.data.tags);
    if (parsed.data.tags !== undefined) machine.tags = parsed.data.tags;
    if (parsed.data.properties) machine.properties = { ...machine.properties, ...parsed.data.properties };
    machine.lastModifiedAt = this.deps.clock.now();
    machine.lastModifiedBy = ctx.caller;
    this.publish("write", machine, ctx);
    return { status: 200, body: this.render(machine) };
  }

  private delete(ctx: RequestContext): HandlerResult {
    const { id } = this.target(ctx);
    const machine = this.byId.get(idKey(id));
    if (!machine) return { status: 204 };
    if (apiVersionBefore(ctx.apiVersion, MACHINE_ASYNC_DELETE_API_VERSION)) {
      this.remove(machine, ctx);
      return { status: 200 };
    }
    const pending = this.deps.operations.findPendingFor(machine.id);
    const op =
      pending ??
      this.deps.operations.start({
        namespace: NAMESPACE,
        subscriptionId: machine.subscriptionId,
        location: machine.location,
        resourceId: machine.id,
        action: "delete",
        inProgressPolls: this.deps.deleteBehaviour.runForMs === undefined ? this.deps.deleteBehaviour.inProgressPolls : Number.POSITIVE_INFINITY,
        retryAfterSeconds: this.deps.deleteBehaviour.retryAfterSeconds,
        ...(this.deps.deleteBehaviour.runForMs === undefined ? {} : { completeAfterMs: this.deps.deleteBehaviour.runForMs }),
        onComplete: () => this.remove(machine, ctx),
      });
    machine.provisioningState = "Deleting";
    return { status: 202, headers: this.deps.operations.monitorHeaders(op, ctx.origin, ctx.apiVersion) };
  }

  private listByResourceGroup(ctx: RequestContext): HandlerResult {
    const group = this.deps.tenancy.requireResourceGroup(ctx.params["sub"]!, ctx.params["rg"]!);
    const items = this.list().filter(
      (m) => m.subscriptionId.toLowerCase() === group.subscriptionId.toLowerCase() && m.resourceGroup.toLowerCase() === group.name.toLowerCase(),
    );
    return {
      status: 200,
      body: pageOf(
        items.map((m) => this.render(m)),
        ctx,
        this.deps.pageSize,
      ),
    };
  }

  private listBySubscription(ctx: RequestContext): HandlerResult {
    const sub = this.deps.tenancy.requireSubscription(ctx.params["sub"]!);
    const items = this.list().filter((m) => m.subscriptionId.toLowerCase() === sub.toLowerCase());
    return {
      status: 200,
      body: pageOf(
        items.map((m) => this.render(m)),
        ctx,
        this.deps.pageSize,
      ),
    };
  }

  private create(subscriptionId: string, resourceGroup: string, name: string, location: string, caller: Caller, now: number): MachineRecord {
    const principalId = this.deps.newId();
    const id = machineResourceId(subscriptionId, resourceGroup, name);
    this.deps.directory.add({ id: principalId, type: "ServicePrincipal", origin: "machine", createdAt: now, resourceId: id });
    const machine: MachineRecord = {
      id,
      name,
      subscriptionId,
      resourceGroup,
      location,
      tags: null,
      kind: null,
      properties: {},
      principalId,
      tenantId: this.deps.tenantId,
      provisioningState: "Succeeded",
      status: null,
      agentVersion: null,
      lastStatusChange: null,
      createdAt: now,
      createdBy: caller,
      lastModifiedAt: now,
      lastModifiedBy: caller,
    };
    this.byId.set(idKey(id), machine);
    return machine;
  }

  private remove(machine: MachineRecord, ctx: RequestContext): void {
    if (this.byId.get(idKey(machine.id)) !== machine) return;
    this.byId.delete(idKey(machine.id));
    // The system-assigned identity goes with the machine; role assignments that name it are left as orphans.
    this.deps.directory.markDeleted(machine.principalId);
    this.publish("delete", machine, ctx);
  }

  /** Real events carry `httpRequest` only for updates and deletes, not for a first write. */
  private publish(kind: "write" | "delete", machine: MachineRecord, ctx: RequestContext, options: { created?: boolean } = {}): void {
    this.deps.events.publish({
      kind,
      resourceId: machine.id,
      subscriptionId: machine.subscriptionId,
      resourceGroup: machine.resourceGroup,
      resourceProvider: NAMESPACE,
      resourceType: "machines",
      caller: ctx.caller,
      correlationId: ctx.correlationId,
      ...(options.created ? {} : { httpRequest: { clientRequestId: ctx.clientRequestId, method: ctx.method, url: requestUrl(ctx) } }),
    });
  }

  private target(ctx: RequestContext) {
    const group = this.deps.tenancy.requireResourceGroup(ctx.params["sub"]!, ctx.params["rg"]!);
    const name = ctx.params["name"]!;
    return { group, name, id: machineResourceId(group.subscriptionId, group.name, name) };
  }

  private require(ctx: RequestContext): MachineRecord {
    const { group, name, id } = this.target(ctx);
    const machine = this.byId.get(idKey(id));
    if (!machine) throw armErrors.resourceNotFound(MACHINE_TYPE, name, group.name);
    return machine;
  }

  /** Shaped like the 2025-01-13 spec examples (Machines_CreateOrUpdate.json / Machines_Get.json). */
  render(m: MachineRecord): Record<string, unknown> {
    const p = m.properties;
    return {
      id: m.id,
      name: m.name,
      location: m.location,
      tags: m.tags,
      identity: { type: "SystemAssigned", principalId: m.principalId, tenantId: m.tenantId },
      type: MACHINE_TYPE,
      kind: m.kind,
      systemData: {
        createdBy: m.createdBy.appId,
        createdByType: byType(m.createdBy),
        createdAt: new Date(m.createdAt).toISOString(),
        lastModifiedBy: m.lastModifiedBy.appId,
        lastModifiedByType: byType(m.lastModifiedBy),
        lastModifiedAt: new Date(m.lastModifiedAt).toISOString(),
      },
      properties: {
        ...p,
        provisioningState: m.provisioningState,
        agentVersion: m.agentVersion,
        status: m.status,
        lastStatusChange: m.lastStatusChange === null ? null : new Date(m.lastStatusChange).toISOString(),
        errorDetails: [],
        displayName: null,
        machineFqdn: null,
        vmUuid: null,
        osName: null,
        osSku: null,
        osVersion: null,
        domainName: null,
        adFqdn: null,
        dnsFqdn: null,
        osType: p["osType"] ?? null,
        vmId: p["vmId"] ?? null,
        clientPublicKey: p["clientPublicKey"] ?? null,
        mssqlDiscovered: "false",
        detectedProperties: {},
      },
    };
  }
}

function normaliseLocation(location: string): string {
  return location.replace(/\s+/g, "").toLowerCase();
}

function byType(caller: Caller): string {
  return caller.principalType === "User" ? "User" : "Application";
}

function requestUrl(ctx: RequestContext): string {
  return `${ctx.origin}${ctx.path}${ctx.rawQuery === "" ? "" : `?${ctx.rawQuery}`}`;
}
