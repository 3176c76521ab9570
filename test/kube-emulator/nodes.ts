/**
 * `/api/v1/nodes`: get, list, delete; plus the kubelet's side, which no REST caller of the service plays: register a
 * Node after TLS bootstrap and report its Ready condition. A Node's shape follows what a kubelet posts (default
 * labels, Hostname address, nodeInfo, a Ready condition with the kubelet's reason strings).
 */
import type { Clock } from "../support/index.js";
import { rfc3339Seconds, type KubeObject, type ObjectStore, type Revisions } from "./object-store.js";
import { checkDeletePreconditions, listResponse } from "./object-writes.js";
import type { HandlerResult, ResourceRequest, ResourceType } from "./resource.js";
import { statusErrors, successStatus } from "./status.js";

export type ReadyStatus = "True" | "False" | "Unknown";

interface Condition {
  type: string;
  status: ReadyStatus;
  reason: string;
  message: string;
  lastHeartbeatTime: string;
  lastTransitionTime: string;
}

const READY_TEXT: Record<ReadyStatus, { reason: string; message: string }> = {
  True: { reason: "KubeletReady", message: "kubelet is posting ready status" },
  False: { reason: "KubeletNotReady", message: "container runtime network not ready: NetworkReady=false" },
  Unknown: { reason: "NodeStatusUnknown", message: "Kubelet stopped posting node status." },
};

export interface NodeRegistration {
  labels?: Record<string, string>;
  kubeletVersion?: string;
  architecture?: string;
}

export class Nodes implements ResourceType {
  readonly resource = { resource: "nodes", group: "" };
  readonly namespaced = false;
  readonly verbs = ["get", "list", "delete"] as const;

  constructor(
    private readonly store: ObjectStore,
    private readonly revisions: Revisions,
    private readonly clock: Clock,
  ) {}

  handle(request: ResourceRequest): HandlerResult {
    switch (request.verb) {
      case "list":
        return { status: 200, body: listResponse("Node", "v1", this.store.list(), request.query, this.revisions) };
      case "get":
        return { status: 200, body: this.require(request.name!) };
      case "delete": {
        const existing = this.require(request.name!);
        checkDeletePreconditions(this.resource, existing, request.body);
        this.store.delete(undefined, existing.metadata.name);
        return { status: 200, body: successStatus(this.resource, existing.metadata.name, existing.metadata.uid) };
      }
      default:
        throw statusErrors.methodNotAllowed();
    }
  }

  /** Registers (or re-registers, as a kubelet with a fresh certificate does) a Ready node. */
  register(name: string, registration: NodeRegistration): KubeObject {
    const arch = registration.architecture ?? "amd64";
    const labels = {
      "beta.kubernetes.io/arch": arch,
      "beta.kubernetes.io/os": "linux",
      "kubernetes.io/arch": arch,
      "kubernetes.io/hostname": name,
      "kubernetes.io/os": "linux",
      ...registration.labels,
    };
    const status = {
      conditions: [this.condition("True", undefined)],
      addresses: [{ type: "Hostname", address: name }],
      nodeInfo: {
        kubeletVersion: registration.kubeletVersion ?? "v1.32.6",
        operatingSystem: "linux",
        architecture: arch,
        containerRuntimeVersion: "containerd://1.7.27",
      },
    };
    const existing = this.store.get(undefined, name);
    const object = { apiVersion: "v1", kind: "Node", metadata: { name, labels }, spec: {}, status };
    return existing ? this.store.replace(existing, object) : this.store.create(object);
  }

  setReady(name: string, ready: ReadyStatus): KubeObject {
    const existing = this.store.get(undefined, name);
    if (!existing) throw new Error(`no node ${name}`);
    const status = (existing["status"] ?? {}) as { conditions?: Condition[] };
    const previous = status.conditions?.find((c) => c.type === "Ready");
    const others = (status.conditions ?? []).filter((c) => c.type !== "Ready");
    return this.store.replace(existing, { ...existing, status: { ...status, conditions: [...others, this.condition(ready, previous)] } });
  }

  private condition(status: ReadyStatus, previous: Condition | undefined): Condition {
    const now = rfc3339Seconds(this.clock.now());
    return {
      type: "Ready",
      status,
      ...READY_TEXT[status],
      lastHeartbeatTime: now,
      lastTransitionTime: previous?.status === status ? previous.lastTransitionTime : now,
    };
  }

  private require(name: string): KubeObject {
    const found = this.store.get(undefined, name);
    if (!found) throw statusErrors.notFound(this.resource, name);
    return found;
  }
}
