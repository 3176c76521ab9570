/**
 * A wire-level stand-in for Azure Resource Manager that the real, unmodified Azure SDK clients talk to. The core is
 * `handle(request) -> response`; `httpClient` (in-process) and `listen()` (HTTPS on loopback) are two transports over
 * it. All emulated time (throttling, replication delay, timestamps, LRO deadlines) comes from the injected clock.
 *
 * Request pipeline, in ARM's order: injected fault (latency / status / drop) -> empty path segment (400) ->
 * authentication (401) -> api-version
 * format (400) -> throttling (429) -> route (404/405) -> api-version published for the resource type (400) ->
 * resource provider.
 */
import { randomUUID } from "node:crypto";
import type { HttpClient } from "@azure/core-rest-pipeline";
import { defaultFaultCode, FaultInjector, WallClock, type Clock, type FaultSpec } from "../support/index.js";
import { isWellFormedApiVersion } from "./api-version.js";
import { checkPublishedApiVersion } from "./published-api-versions.js";
import { ArmError, armErrors } from "./arm-error.js";
import { callerFromAuthorization, DEFAULT_TENANT_ID, type Caller, type PrincipalType } from "./credential.js";
import { Directory, type DirectoryPrincipal } from "./directory.js";
import { ResourceEvents } from "./event-grid.js";
import { listen, type ListenOptions, type ListeningEmulator } from "./https-server.js";
import { inProcessHttpClient } from "./in-process-client.js";
import { Inspector } from "./inspector.js";
import { Machines, type MachineDeleteBehaviour, type MachineStatus } from "./machines.js";
import { ManagedClusters, type ClusterFixture, type ClusterRecord } from "./managed-clusters.js";
import { Operations } from "./operations.js";
import { RequestLog, type RequestLogEntry } from "./request-log.js";
import { parseRequestUrl } from "./request-url.js";
import { scopeParts } from "./resource-id.js";
import { ResourceGroups } from "./resource-groups.js";
import { RoleAssignments } from "./role-assignments.js";
import { RoleDefinitions } from "./role-definitions.js";
import { matchRoute, type RequestContext, type Route, type RouteInfo } from "./router.js";
import type { ResourceGroup } from "./tenancy.js";
import { Tenancy } from "./tenancy.js";
import { opClassOf, Throttler, type OpClass, type ThrottlingOptions } from "./throttling.js";
import type { TokenBucket } from "./token-bucket.js";
import { lowerCaseHeaders, type EmulatorRequest, type EmulatorResponse, type HandlerResult } from "./wire.js";

export interface ArmEmulatorOptions {
  /** Emulated time source; defaults to the wall clock. */
  clock?: Clock;
  /** Tenant of machine identities and default tenant in error messages. */
  tenantId?: string;
  /** Token-bucket limits per principal per operation class; `false` turns throttling off. Defaults to ARM's. */
  throttling?: ThrottlingOptions | false;
  /**
   * How long after creation a new principal (a machine's identity) stays invisible to role assignments made without
   * `principalType`. Default 10 000 ms of emulated time.
   */
  replicationDelayMs?: number;
  /** Async machine DELETE (api >= 2025-01-13): Retry-After (default 200 s, as published) and how long it runs (default: one InProgress poll). */
  machineDelete?: Partial<MachineDeleteBehaviour>;
  /** Role assignments one subscription may hold before RoleAssignmentLimitExceeded. Default 4,000, as ARM. */
  roleAssignmentsPerSubscription?: number;
  /** Items per page in list responses before a nextLink is given. Default 100. */
  pageSize?: number;
  /** Extra latency per request, applied through `sleep`. */
  latency?: (route: RouteInfo) => number;
  /** How latency is waited out; a virtual-time harness replaces this. Defaults to setTimeout. */
  sleep?: (ms: number) => Promise<void>;
  /** Id generator for request ids, principal ids, operation ids. Defaults to random UUIDs. */
  newId?: () => string;
  /** Resource groups (and so subscriptions) that exist from the start. */
  resourceGroups?: Array<{ subscriptionId: string; name: string; location?: string }>;
  clusters?: ClusterFixture[];
}

const DEFAULT_REPLICATION_DELAY_MS = 10_000;
const DEFAULT_PAGE_SIZE = 100;
/** MicrosoftDocs/azure-docs articles/role-based-access-control/troubleshoot-limits.md: "fixed and cannot be increased". */
export const ROLE_ASSIGNMENTS_PER_SUBSCRIPTION = 4_000;

export class ArmEmulator {
  readonly clock: Clock;
  readonly tenantId: string;
  /** Every request seen, in order. */
  readonly requests = new RequestLog();
  readonly faults = new FaultInjector();
  /** Event Grid resource events for machine writes and deletes. */
  readonly events: ResourceEvents;
  readonly inspect: Inspector;
  /** Pass as the SDK client's `httpClient` option (or spread `clientOptions()`). */
  readonly httpClient: HttpClient;

  private readonly newId: () => string;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly latency: ((route: RouteInfo) => number) | undefined;
  private readonly tenancy = new Tenancy();
  private readonly directory: Directory;
  private readonly throttler: Throttler;
  private readonly operations: Operations;
  private readonly roleDefinitions = new RoleDefinitions();
  private readonly machines: Machines;
  private readonly roleAssignments: RoleAssignments;
  private readonly clusters: ManagedClusters;
  private readonly routes: Route[];
  private readonly listeners = new Set<ListeningEmulator>();
  private seq = 0;

  constructor(options: ArmEmulatorOptions = {}) {
    this.clock = options.clock ?? new WallClock();
    this.tenantId = options.tenantId ?? DEFAULT_TENANT_ID;
    this.newId = options.newId ?? randomUUID;
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.latency = options.latency;
    const pageSize = options.pageSize ?? DEFAULT_PAGE_SIZE;
    this.directory = new Directory(this.clock, options.replicationDelayMs ?? DEFAULT_REPLICATION_DELAY_MS);
    this.throttler = new Throttler(options.throttling ?? {}, this.clock);
    this.operations = new Operations(this.clock, this.newId);
    this.events = new ResourceEvents(this.clock, this.newId);
    this.machines = new Machines({
      clock: this.clock,
      tenancy: this.tenancy,
      directory: this.directory,
      operations: this.operations,
      events: this.events,
      newId: this.newId,
      tenantId: this.tenantId,
      pageSize,
      deleteBehaviour: { inProgressPolls: 1, retryAfterSeconds: 200, ...options.machineDelete },
    });
    this.roleAssignments = new RoleAssignments({
      clock: this.clock,
      tenancy: this.tenancy,
      directory: this.directory,
      roleDefinitions: this.roleDefinitions,
      tenantId: this.tenantId,
      pageSize,
      perSubscriptionLimit: options.roleAssignmentsPerSubscription ?? ROLE_ASSIGNMENTS_PER_SUBSCRIPTION,
    });
    this.clusters = new ManagedClusters(this.tenancy, this.newId, this.tenantId);
    this.routes = [
      ...this.machines.routes(),
      ...this.roleAssignments.routes(),
      ...this.roleDefinitions.routes(),
      ...this.clusters.routes(),
      ...new ResourceGroups(this.tenancy).routes(),
    ];
    this.inspect = new Inspector({
      machines: this.machines,
      roleAssignments: this.roleAssignments,
      clusters: this.clusters,
      operations: this.operations,
      directory: this.directory,
    });
    this.httpClient = inProcessHttpClient((request) => this.handle(request));
    for (const g of options.resourceGroups ?? []) this.addResourceGroup(g.subscriptionId, g.name, g.location);
    for (const c of options.clusters ?? []) this.addCluster(c);
  }

  // ---- fixtures -------------------------------------------------------------------------------------------------

  addSubscription(subscriptionId: string): string {
    return this.tenancy.addSubscription(subscriptionId);
  }

  addResourceGroup(subscriptionId: string, name: string, location?: string): ResourceGroup {
    return this.tenancy.addResourceGroup(subscriptionId, name, location);
  }

  /** Adds an AKS cluster (and its resource group if needed). */
  addCluster(fixture: ClusterFixture): ClusterRecord {
    return this.clusters.add(fixture);
  }

  /**
   * Registers a directory principal (user, group, service principal). `createdAt` defaults to "long ago", i.e.
   * already replicated; pass the emulated creation time to model a principal that is still replicating.
   */
  addPrincipal(principal: { id: string; type?: PrincipalType; createdAt?: number }): DirectoryPrincipal {
    return this.directory.add({
      id: principal.id,
      type: principal.type ?? "ServicePrincipal",
      origin: "fixture",
      createdAt: principal.createdAt ?? Number.NEGATIVE_INFINITY,
    });
  }

  /** Makes a custom role definition GUID assignable. */
  addRoleDefinition(guid: string, roleName: string): void {
    this.roleDefinitions.add(guid, roleName);
  }

  /** Simulates the machine's agent reporting in (e.g. `Connected` after azcmagent connect). */
  setMachineStatus(machineId: string, status: MachineStatus, agentVersion: string | null = null): void {
    this.machines.setStatus(machineId, status, agentVersion);
  }

  /** Completes every pending long-running operation, as if polled to the end. */
  /** A caller's throttling bucket (its own, per subscription and class), once it has made such a request. */
  throttleBucket(principalId: string, subscriptionId: string, opClass: OpClass): TokenBucket | undefined {
    return this.throttler.bucketOf(principalId, subscriptionId, opClass);
  }

  completePendingOperations(): void {
    this.operations.completeAll();
  }

  /**
   * Forgets everything ARM callers created (machines, role assignments, operations, identities), the request log,
   * events, throttling buckets and faults. Fixtures stay: subscriptions, resource groups, clusters, registered
   * principals and role definitions.
   */
  reset(): void {
    this.machines.reset();
    this.roleAssignments.reset();
    this.operations.clear();
    this.directory.reset();
    this.throttler.reset();
    this.faults.clear();
    this.events.clear();
    this.requests.clear();
    this.seq = 0;
  }

  // ---- transports -----------------------------------------------------------------------------------------------

  /** SDK client options for the in-process transport. */
  clientOptions(): { httpClient: HttpClient } {
    return { httpClient: this.httpClient };
  }

  /** Starts an HTTPS (default) server on 127.0.0.1 with an ephemeral port. */
  async listen(options: ListenOptions = {}): Promise<ListeningEmulator> {
    const listening = await listen((request) => this.handle(request), options);
    this.listeners.add(listening);
    const close = listening.close;
    return {
      ...listening,
      close: async () => {
        this.listeners.delete(listening);
        await close();
      },
    };
  }

  /** Closes every server started with `listen()`. */
  async close(): Promise<void> {
    const all = [...this.listeners];
    this.listeners.clear();
    await Promise.all(all.map((l) => l.close()));
  }

  // ---- the handler ----------------------------------------------------------------------------------------------

  async handle(request: EmulatorRequest): Promise<EmulatorResponse> {
    const seq = ++this.seq;
    const arrivedAt = this.clock.now();
    const method = request.method.toUpperCase();
    const url = parseRequestUrl(request.url);
    const headers = lowerCaseHeaders(request.headers);
    const opClass = opClassOf(method);
    const requestId = this.newId();
    const correlationId = headers["x-ms-correlation-request-id"] ?? this.newId();
    const clientRequestId = headers["x-ms-client-request-id"];
    const apiVersion = url.query.get("api-version") ?? undefined;
    const match = matchRoute(this.routes, method, url.path);
    const routeName = match.kind === "route" ? match.route.name : undefined;
    const logged = parseForLog(request.body);

    let caller: Caller | undefined;
    let throttled = false;
    let faulted: RequestLogEntry["faulted"];
    let rateHeaders: Record<string, string> = {};

    const finish = (result: HandlerResult | "drop"): EmulatorResponse => {
      const response: EmulatorResponse =
        result === "drop"
          ? { status: 0, headers: {}, dropConnection: true }
          : { status: result.status, headers: this.standardHeaders(result, rateHeaders, requestId, correlationId, clientRequestId), body: result.body };
      this.requests.append({
        seq,
        at: arrivedAt,
        method,
        path: url.path,
        query: Object.fromEntries(url.query),
        apiVersion,
        principalId: caller?.principalId,
        opClass,
        route: routeName,
        status: response.status,
        errorCode: errorCodeOf(response.body),
        throttled,
        faulted,
        clientRequestId,
        correlationId,
        requestId,
        body: logged,
      });
      return response;
    };

    // Known before faults apply so a faulted request is still attributed to its caller in the log.
    let authError: ArmError | undefined;
    try {
      caller = callerFromAuthorization(headers["authorization"]);
    } catch (error) {
      if (!(error instanceof ArmError)) throw error;
      authError = error;
    }

    const fault = this.faults.take(method, url.path);
    const delay = (fault?.latencyMs ?? 0) + (this.latency?.({ method, path: url.path, route: routeName, opClass }) ?? 0);
    if (delay > 0) await this.sleep(delay);
    if (fault?.drop) {
      faulted = "drop";
      return finish("drop");
    }
    if (fault?.status !== undefined) {
      faulted = "status";
      return finish(faultResult(fault));
    }
    if (fault) faulted = "latency";

    try {
      // Before authentication: a malformed URI never reaches a provider, whoever sends it.
      if (url.emptySegment) throw armErrors.invalidRequestUri(rawPathOf(request.url));
      if (authError !== undefined || caller === undefined) throw authError ?? armErrors.invalidToken();
      this.directory.noteCaller(caller.principalId, caller.principalType);
      if (apiVersion === undefined || apiVersion === "") throw armErrors.missingApiVersion();
      if (!isWellFormedApiVersion(apiVersion)) throw armErrors.invalidApiVersion(apiVersion);
      try {
        rateHeaders = this.throttler.admit(caller.principalId, scopeParts(url.path).subscriptionId, opClass).headers;
      } catch (error) {
        throttled = true;
        throw error;
      }
      this.operations.tick();
      if (match.kind === "methodNotAllowed") throw armErrors.methodNotAllowed(method);
      if (match.kind === "none") throw unknownRoute(url.path, apiVersion);
      checkPublishedApiVersion(match.route.name, apiVersion);
      const ctx: RequestContext = {
        method,
        path: url.path,
        origin: url.origin,
        query: url.query,
        rawQuery: url.rawQuery,
        apiVersion,
        caller,
        body: parseJsonBody(request.body),
        headers,
        params: match.params,
        correlationId,
        clientRequestId,
      };
      return finish(match.route.handle(ctx));
    } catch (error) {
      if (error instanceof ArmError) return finish(error.toResult());
      throw error;
    }
  }

  private standardHeaders(
    result: HandlerResult,
    rateHeaders: Record<string, string>,
    requestId: string,
    correlationId: string,
    clientRequestId: string | undefined,
  ): Record<string, string> {
    const stamp = new Date(this.clock.now())
      .toISOString()
      .replace(/[-:]/g, "")
      .replace(/\.\d+Z$/, "Z");
    const headers: Record<string, string> = {
      "cache-control": "no-cache",
      pragma: "no-cache",
      expires: "-1",
      "x-content-type-options": "nosniff",
      "x-ms-request-id": requestId,
      "x-ms-correlation-request-id": correlationId,
      "x-ms-routing-request-id": `EMULATOR:${stamp}:${correlationId}`,
      ...rateHeaders,
      ...result.headers,
    };
    if (clientRequestId !== undefined) headers["x-ms-client-request-id"] = clientRequestId;
    if (result.body !== undefined) headers["content-type"] = "application/json; charset=utf-8";
    return headers;
  }
}

function rawPathOf(url: string): string {
  return (url.replace(/^https?:\/\/[^/?#]+/i, "").split(/[?#]/, 1)[0] ?? "").slice(0, 300);
}

function faultResult(fault: Readonly<FaultSpec>): HandlerResult {
  const status = fault.status ?? 500;
  const headers: Record<string, string> = {};
  if (fault.retryAfterSeconds !== undefined) headers["retry-after"] = String(fault.retryAfterSeconds);
  if (fault.retryAfterMs !== undefined) headers["retry-after-ms"] = String(fault.retryAfterMs);
  return new ArmError(status, fault.code ?? defaultFaultCode(status), fault.message ?? `Injected fault: HTTP ${status}.`, headers).toResult();
}

function unknownRoute(path: string, apiVersion: string): ArmError {
  const provider = /\/providers\/([^/]+)\/([^/]+)/i.exec(path);
  return provider ? armErrors.invalidResourceType(provider[1]!, provider[2]!, apiVersion) : armErrors.pathNotFound(path);
}

function parseJsonBody(text: string | undefined): unknown {
  if (text === undefined || text.trim() === "") return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw armErrors.invalidRequestContent(error instanceof Error ? error.message : String(error));
  }
}

function parseForLog(text: string | undefined): unknown {
  if (text === undefined || text === "") return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

function errorCodeOf(body: unknown): string | undefined {
  if (typeof body !== "object" || body === null) return undefined;
  const error = (body as { error?: { code?: unknown } }).error;
  return typeof error?.code === "string" ? error.code : undefined;
}
