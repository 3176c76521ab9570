/**
 * Event Grid resource events (EventGridSchema) for writes and deletes the emulator performs, delivered to in-process
 * listeners. Delivery is deferred to a microtask so a listener that calls back into the emulator never runs in the
 * middle of the request that triggered it, just as real Event Grid delivers after the fact. Real delivery is also at
 * least once and unordered, retried for up to a day: `redeliver` hands a published event to the listeners again, at
 * whatever point a test chooses.
 */
import type { Clock } from "../support/index.js";
import type { Caller } from "./credential.js";

export type ResourceEventType = "Microsoft.Resources.ResourceWriteSuccess" | "Microsoft.Resources.ResourceDeleteSuccess";

export interface ResourceEventData {
  authorization: { scope: string; action: string; evidence: Record<string, string> };
  claims: Record<string, string>;
  correlationId: string;
  httpRequest?: { clientRequestId: string; clientIpAddress: string; method: string; url: string };
  resourceProvider: string;
  resourceUri: string;
  operationName: string;
  status: "Succeeded";
  subscriptionId: string;
  tenantId: string;
  resourceGroup: string;
}

export interface ResourceEvent {
  id: string;
  topic: string;
  subject: string;
  eventType: ResourceEventType;
  eventTime: string;
  data: ResourceEventData;
  dataVersion: string;
  metadataVersion: string;
}

export type ResourceEventListener = (event: ResourceEvent) => void | Promise<void>;

export interface ResourceChange {
  kind: "write" | "delete";
  resourceId: string;
  subscriptionId: string;
  resourceGroup: string;
  /** e.g. `Microsoft.HybridCompute` */
  resourceProvider: string;
  /** e.g. `machines` */
  resourceType: string;
  caller: Caller;
  correlationId: string;
  /** Present when an existing resource was updated or a resource was deleted, as in real events. */
  httpRequest?: { clientRequestId: string | undefined; method: string; url: string };
}

export class ResourceEvents {
  private readonly listeners = new Set<ResourceEventListener>();
  private readonly log: ResourceEvent[] = [];
  private readonly errors: unknown[] = [];

  constructor(
    private readonly clock: Clock,
    private readonly newId: () => string,
  ) {}

  /** Registers a listener; returns the function that removes it. */
  subscribe(listener: ResourceEventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Every event emitted so far, whether or not anyone listened. */
  get published(): readonly ResourceEvent[] {
    return this.log;
  }

  /** Errors thrown (or rejections) by listeners; delivery never fails the ARM request. */
  get listenerErrors(): readonly unknown[] {
    return this.errors;
  }

  publish(change: ResourceChange): ResourceEvent {
    const action = `${change.resourceProvider}/${change.resourceType}/${change.kind}`;
    const data: ResourceEventData = {
      authorization: {
        scope: change.resourceId,
        action,
        evidence: { principalId: change.caller.principalId, principalType: change.caller.principalType, role: "Emulated" },
      },
      claims: {
        appid: change.caller.appId,
        "http://schemas.microsoft.com/identity/claims/objectidentifier": change.caller.principalId,
        "http://schemas.microsoft.com/identity/claims/tenantid": change.caller.tenantId,
        ver: "1.0",
      },
      correlationId: change.correlationId,
      resourceProvider: change.resourceProvider,
      resourceUri: change.resourceId,
      operationName: action,
      status: "Succeeded",
      subscriptionId: change.subscriptionId,
      tenantId: change.caller.tenantId,
      resourceGroup: change.resourceGroup,
    };
    if (change.httpRequest) {
      data.httpRequest = {
        clientRequestId: change.httpRequest.clientRequestId ?? "",
        clientIpAddress: "127.0.0.1",
        method: change.httpRequest.method,
        url: change.httpRequest.url,
      };
    }
    const event: ResourceEvent = {
      id: this.newId(),
      topic: `/subscriptions/${change.subscriptionId}/resourceGroups/${change.resourceGroup}`,
      subject: change.resourceId,
      eventType: change.kind === "write" ? "Microsoft.Resources.ResourceWriteSuccess" : "Microsoft.Resources.ResourceDeleteSuccess",
      eventTime: new Date(this.clock.now()).toISOString(),
      data,
      dataVersion: "2",
      metadataVersion: "1",
    };
    this.log.push(event);
    for (const listener of this.listeners) queueMicrotask(() => void this.deliver(listener, event));
    return event;
  }

  /**
   * Delivers a published event (or the one with this id) to every current listener again, as a duplicate or a late
   * retry. Resolves when every listener has handled it; what they throw is recorded in listenerErrors as for any
   * delivery.
   */
  async redeliver(eventOrId: ResourceEvent | string): Promise<void> {
    const id = typeof eventOrId === "string" ? eventOrId : eventOrId.id;
    const event = this.log.find((e) => e.id === id);
    if (!event) throw new Error(`no event ${id} was published`);
    await Promise.all([...this.listeners].map((listener) => this.deliver(listener, event)));
  }

  clear(): void {
    this.log.length = 0;
    this.errors.length = 0;
  }

  /** Never rejects: a listener's failure is recorded, as a failed delivery is Event Grid's to retry, not ARM's. */
  private async deliver(listener: ResourceEventListener, event: ResourceEvent): Promise<void> {
    try {
      await listener(event);
    } catch (e) {
      this.errors.push(e);
    }
  }
}
