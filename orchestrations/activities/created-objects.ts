/**
 * What the service creates for a node, as recorded on the node (`createdObjects`) before each creating call, so
 * compensation, offboarding and the sweeper remove exactly that. A reference is `<kind>:<id>`, and
 * `<kind>:<cluster>#<name>` for objects inside a cluster.
 */

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

export const objectRef = (o: CreatedObject): string =>
  o.kind === "bootstrapToken" || o.kind === "kubeNode" ? `${o.kind}:${o.cluster}#${o.id}` : `${o.kind}:${o.id}`;

/** The `managed-by` tag value on Azure resources the service creates (the sweeper finds orphans by it). */
export const MANAGED_BY = "flexnode-onboarding";

/** The node's one-time secret holding its bootstrap kubeconfig (and, under `<ref>.token`, the token inside it). */
export const BOOTSTRAP_SECRET_REF = "bootstrap-kubeconfig";
