/**
 * Asynchronous operations behind 202 responses: an operation stays InProgress for a set number of status polls (or,
 * optionally, emulated milliseconds) and then completes, running its completion effect exactly once. Both monitor
 * URLs are served: Azure-AsyncOperation (`operationStatus`, 200 with a status body) and Location
 * (`operationResults`, 202 while running, then 204).
 */
import type { Clock } from "../support/index.js";
import { armErrors } from "./arm-error.js";
import type { RequestContext, Route } from "./router.js";
import type { HandlerResult } from "./wire.js";

export type OperationStatus = "InProgress" | "Succeeded" | "Failed" | "Canceled";

export interface AsyncOperation {
  /** Operation id (the last path segment of both monitor URLs). */
  name: string;
  namespace: string;
  subscriptionId: string;
  location: string;
  resourceId: string;
  action: "delete";
  status: OperationStatus;
  startTime: number;
  endTime?: number;
  polls: number;
  /** Polls answered InProgress before the operation completes. */
  inProgressPolls: number;
  /** Emulated time at which the operation completes even without polls. */
  completeAt?: number;
  /** Sent as Retry-After with the 202 and every InProgress answer. */
  retryAfterSeconds: number;
}

export interface StartOperation {
  namespace: string;
  subscriptionId: string;
  location: string;
  resourceId: string;
  action: "delete";
  inProgressPolls: number;
  completeAfterMs?: number;
  retryAfterSeconds: number;
  onComplete: () => void;
}

export class Operations {
  private readonly ops = new Map<string, { op: AsyncOperation; onComplete: () => void }>();

  constructor(
    private readonly clock: Clock,
    private readonly newId: () => string,
  ) {}

  start(spec: StartOperation): AsyncOperation {
    const now = this.clock.now();
    const op: AsyncOperation = {
      name: this.newId(),
      namespace: spec.namespace,
      subscriptionId: spec.subscriptionId,
      location: spec.location.replace(/\s+/g, "").toLowerCase(),
      resourceId: spec.resourceId,
      action: spec.action,
      status: "InProgress",
      startTime: now,
      polls: 0,
      inProgressPolls: spec.inProgressPolls,
      retryAfterSeconds: spec.retryAfterSeconds,
    };
    if (spec.completeAfterMs !== undefined) op.completeAt = now + spec.completeAfterMs;
    this.ops.set(op.name.toLowerCase(), { op, onComplete: spec.onComplete });
    return op;
  }

  /** Monitor URLs for the 202 response, on the origin the request came in on. */
  monitorHeaders(op: AsyncOperation, origin: string, apiVersion: string): Record<string, string> {
    const base = `${origin}/subscriptions/${op.subscriptionId}/providers/${op.namespace}/locations/${op.location}`;
    const q = `?api-version=${encodeURIComponent(apiVersion)}`;
    return {
      "azure-asyncoperation": `${base}/operationStatus/${op.name}${q}`,
      location: `${base}/operationResults/${op.name}${q}`,
      "retry-after": String(op.retryAfterSeconds),
    };
  }

  /** Completes every operation whose emulated deadline has passed. */
  tick(): void {
    const now = this.clock.now();
    for (const entry of this.ops.values()) {
      if (entry.op.status === "InProgress" && entry.op.completeAt !== undefined && now >= entry.op.completeAt) {
        this.complete(entry);
      }
    }
  }

  /** Completes all pending operations now, as if every client had polled them to the end. */
  completeAll(): void {
    for (const entry of this.ops.values()) if (entry.op.status === "InProgress") this.complete(entry);
  }

  pending(): AsyncOperation[] {
    return [...this.ops.values()].filter((e) => e.op.status === "InProgress").map((e) => ({ ...e.op }));
  }

  findPendingFor(resourceId: string): AsyncOperation | undefined {
    const key = resourceId.toLowerCase();
    return [...this.ops.values()].find((e) => e.op.status === "InProgress" && e.op.resourceId.toLowerCase() === key)?.op;
  }

  clear(): void {
    this.ops.clear();
  }

  /** The two monitor routes for one provider namespace. */
  routes(namespace: string, routePrefix: string): Route[] {
    const ns = namespace.replace(/\./g, "\\.");
    const at = (kind: string) => new RegExp(`^/subscriptions/(?<sub>[^/]+)/providers/${ns}/locations/(?<loc>[^/]+)/${kind}/(?<op>[^/]+)$`, "i");
    return [
      { name: `${routePrefix}.operationStatus`, method: "GET", pattern: at("operationStatus"), handle: (ctx) => this.status(ctx, namespace) },
      { name: `${routePrefix}.operationResult`, method: "GET", pattern: at("operationResults"), handle: (ctx) => this.result(ctx, namespace) },
    ];
  }

  private status(ctx: RequestContext, namespace: string): HandlerResult {
    const op = this.poll(ctx, namespace);
    const body: Record<string, unknown> = {
      id: ctx.path,
      name: op.name,
      status: op.status,
      startTime: new Date(op.startTime).toISOString(),
    };
    if (op.endTime !== undefined) body["endTime"] = new Date(op.endTime).toISOString();
    return { status: 200, body, ...(op.status === "InProgress" ? { headers: { "retry-after": String(op.retryAfterSeconds) } } : {}) };
  }

  private result(ctx: RequestContext, namespace: string): HandlerResult {
    const op = this.poll(ctx, namespace);
    if (op.status === "InProgress") return { status: 202, headers: this.monitorHeaders(op, ctx.origin, ctx.apiVersion) };
    return { status: 204 };
  }

  private poll(ctx: RequestContext, namespace: string): AsyncOperation {
    const entry = this.ops.get((ctx.params["op"] ?? "").toLowerCase());
    if (
      !entry ||
      entry.op.namespace.toLowerCase() !== namespace.toLowerCase() ||
      entry.op.subscriptionId.toLowerCase() !== (ctx.params["sub"] ?? "").toLowerCase()
    ) {
      throw armErrors.pathNotFound(ctx.path);
    }
    if (entry.op.status === "InProgress") {
      entry.op.polls += 1;
      if (entry.op.polls > entry.op.inProgressPolls) this.complete(entry);
    }
    return entry.op;
  }

  private complete(entry: { op: AsyncOperation; onComplete: () => void }): void {
    entry.op.status = "Succeeded";
    entry.op.endTime = this.clock.now();
    entry.onComplete();
  }
}
