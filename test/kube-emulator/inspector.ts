/** Snapshots of what exists in the emulated cluster now, for "which objects are left" assertions. */
import type { KubeObject } from "./object-store.js";
import type { ReadyStatus } from "./nodes.js";
import { isBuiltIn } from "./rbac.js";
import { decodeData } from "./secrets.js";

export interface SecretView {
  namespace: string;
  name: string;
  type: string;
  labels: Record<string, string>;
  /** Decoded. */
  data: Record<string, string>;
  resourceVersion: string;
}

export interface ClusterRoleView {
  name: string;
  builtIn: boolean;
  labels: Record<string, string>;
  rules: object[];
}

export interface ClusterRoleBindingView {
  name: string;
  builtIn: boolean;
  labels: Record<string, string>;
  roleRef: { apiGroup: string; kind: string; name: string };
  subjects: { kind: string; name: string; apiGroup?: string; namespace?: string }[];
}

export interface NodeView {
  name: string;
  labels: Record<string, string>;
  /** Status of the Ready condition. */
  ready: ReadyStatus | undefined;
}

export interface JoinRecord {
  node: string;
  tokenId: string;
  groups: string[];
  at: number;
}

export interface KubeInspection {
  secrets: SecretView[];
  clusterRoles: ClusterRoleView[];
  clusterRoleBindings: ClusterRoleBindingView[];
  nodes: NodeView[];
  /** Successful joinNode calls, in order. */
  joins: JoinRecord[];
}

export function secretView(o: KubeObject): SecretView {
  return {
    namespace: o.metadata.namespace ?? "",
    name: o.metadata.name,
    type: String(o["type"]),
    labels: o.metadata.labels ?? {},
    data: decodeData(o),
    resourceVersion: o.metadata.resourceVersion,
  };
}

export function clusterRoleView(o: KubeObject): ClusterRoleView {
  return { name: o.metadata.name, builtIn: isBuiltIn(o), labels: o.metadata.labels ?? {}, rules: (o["rules"] as object[] | undefined) ?? [] };
}

export function clusterRoleBindingView(o: KubeObject): ClusterRoleBindingView {
  return {
    name: o.metadata.name,
    builtIn: isBuiltIn(o),
    labels: o.metadata.labels ?? {},
    roleRef: o["roleRef"] as ClusterRoleBindingView["roleRef"],
    subjects: (o["subjects"] as ClusterRoleBindingView["subjects"] | undefined) ?? [],
  };
}

export function nodeView(o: KubeObject): NodeView {
  const conditions = (o["status"] as { conditions?: { type: string; status: ReadyStatus }[] } | undefined)?.conditions ?? [];
  return { name: o.metadata.name, labels: o.metadata.labels ?? {}, ready: conditions.find((c) => c.type === "Ready")?.status };
}
