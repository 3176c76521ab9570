/**
 * The registry's domain model: pools, enrolment tokens, nodes and audit entries, as zod schemas so the admin API,
 * the OpenAPI document and the table mapping all read the same definitions.
 */
import { NodeFactsSchema, type NodeFacts as ContractNodeFacts } from "../../../contract/node-facts.js";
import { z } from "zod";

/** Names usable as a table PartitionKey/RowKey, an Arc tag value and a Kubernetes label value. */
export const PoolName = z
  .string()
  .regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, "lowercase letters, digits and '-', 1-63 characters, starting and ending with a letter or digit")
  .describe("Pool name (DNS label)");

const ArmId = (what: string, pattern: RegExp) => z.string().regex(pattern, `must be the resource id of ${what}`);
export const ClusterResourceId = ArmId(
  "an AKS managed cluster",
  /^\/subscriptions\/[0-9a-fA-F-]{36}\/resourceGroups\/[\w.()-]{1,90}\/providers\/Microsoft\.ContainerService\/managedClusters\/[\w-]{1,63}$/i,
);
export const ResourceGroupId = ArmId("a resource group", /^\/subscriptions\/[0-9a-fA-F-]{36}\/resourceGroups\/[\w.()-]{1,90}$/i);

/** A Kubernetes qualified name: an optional DNS-subdomain prefix (at most 253 characters) and '/', then a name of at most 63. */
export const LabelKey = z
  .string()
  .regex(
    /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/,
    "must be a Kubernetes label key",
  )
  .refine((k) => k.indexOf("/") <= 253, "must be a Kubernetes label key: its prefix is at most 253 characters");
export const LabelValue = z.string().regex(/^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/, "must be a Kubernetes label value");

/**
 * Keys in the kubernetes.io and k8s.io namespaces the kubelet may set on its own Node, after
 * k8s.io/kubelet/pkg/apis/well_known_labels.go (kubeletLabels, kubeletLabelNamespaces, IsKubeletLabel).
 */
const KUBELET_LABELS = new Set([
  "kubernetes.io/hostname",
  "kubernetes.io/arch",
  "kubernetes.io/os",
  "beta.kubernetes.io/arch",
  "beta.kubernetes.io/os",
  "beta.kubernetes.io/instance-type",
  "node.kubernetes.io/instance-type",
  "topology.kubernetes.io/region",
  "topology.kubernetes.io/zone",
  "failure-domain.beta.kubernetes.io/region",
  "failure-domain.beta.kubernetes.io/zone",
]);
const inNamespace = (prefix: string, domain: string): boolean => prefix === domain || prefix.endsWith(`.${domain}`);

/**
 * Whether a kubelet started with this key in --node-labels registers its Node. Pool and token labels go there
 * (node-plan.ts), and since Kubernetes 1.16 the kubelet exits at start (cmd/kubelet/app/options/options.go,
 * ValidateKubeletFlags) on a kubernetes.io or k8s.io key (or any subdomain of them) other than its own: the list above
 * or the [*.]kubelet.kubernetes.io and [*.]node.kubernetes.io namespaces. The NodeRestriction admission plugin also
 * refuses [*.]node-restriction.kubernetes.io keys from a node (that namespace falls under the same rule).
 */
export function kubeletMaySetLabel(key: string): boolean {
  const slash = key.indexOf("/");
  if (slash < 0) return true;
  const prefix = key.slice(0, slash);
  if (inNamespace(prefix, "node-restriction.kubernetes.io")) return false;
  if (!inNamespace(prefix, "kubernetes.io") && !inNamespace(prefix, "k8s.io")) return true;
  return KUBELET_LABELS.has(key) || inNamespace(prefix, "kubelet.kubernetes.io") || inNamespace(prefix, "node.kubernetes.io");
}

/** A key for a node label: a label key the kubelet accepts in --node-labels. */
export const NodeLabelKey = LabelKey.refine(
  kubeletMaySetLabel,
  "the kubelet refuses --node-labels in the kubernetes.io and k8s.io namespaces it does not own (only kubelet.kubernetes.io/*, node.kubernetes.io/*, " +
    "kubernetes.io/hostname|arch|os, topology.kubernetes.io/region|zone and their beta forms), and never node-restriction.kubernetes.io/*: " +
    "use your own prefix such as example.com/role, or apply node-role.kubernetes.io labels from the cluster (kubectl label node)",
);
/** A refused record key reports its own schema's message, not zod's "Invalid key in record". */
function keyIssueMessage(issue: { code?: string; issues?: readonly { message: string }[] }): string | undefined {
  return issue.code === "invalid_key" ? issue.issues?.map((i) => i.message).join("; ") : undefined;
}

/**
 * Node labels as they arrive (pool and token requests), passed to the kubelet as --node-labels. A refused key's message
 * is the key schema's, not zod's "Invalid key in record".
 */
export const Labels = z.record(NodeLabelKey, LabelValue, { error: keyIssueMessage }).refine((l) => Object.keys(l).length <= 64, "at most 64 labels");
/**
 * Labels as stored, read back with the rules they were written under: a row written before the kubelet rule above
 * still loads, so an admin can see and fix the pool instead of every list of pools failing on it.
 */
export const StoredLabels = z.record(LabelKey, LabelValue);
export const Taint = z.strictObject({
  key: LabelKey,
  value: LabelValue.optional(),
  effect: z.enum(["NoSchedule", "PreferNoSchedule", "NoExecute"]),
});
export const Taints = z.array(Taint).max(32);

/**
 * Built-in roles a pool may never grant: each lets its holder write role assignments or every resource at the scope,
 * so a node identity holding one could take over the pool's cluster or Arc resource group. pool.bicep refuses the
 * same list (infra/modules/roles.bicep privilegedRoles; the infra tests compare the two).
 */
export const PRIVILEGED_ROLES: Readonly<Record<string, string>> = {
  "8e3af657-a8ff-443c-a75c-2fe8c4bcb635": "Owner",
  "b24988ac-6180-42a0-ab88-20f7382dd24c": "Contributor",
  "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9": "User Access Administrator",
  "f58310d9-a9f6-439a-9e8d-f62e7b41a168": "Role Based Access Control Administrator",
};

/** A role the saga grants to the node's Arc identity. `scope` names a scope the pool already knows. */
export const RoleGrant = z.strictObject({
  roleDefinitionId: z
    .uuid()
    .refine((id) => !Object.hasOwn(PRIVILEGED_ROLES, id.toLowerCase()), {
      error: (issue) =>
        `${PRIVILEGED_ROLES[String(issue.input).toLowerCase()]} is a privileged role: a node identity holding it could take over the scope, and pool.bicep refuses it too; grant a narrower role`,
    })
    .describe("Built-in or custom role definition GUID; never Owner, Contributor, User Access Administrator or Role Based Access Control Administrator"),
  scope: z.enum(["cluster", "arcResourceGroup"]),
});
/** Grants as stored: a pool written before the privileged-role refusal still loads, so an admin can see and fix it. */
export const StoredRoleGrant = RoleGrant.extend({ roleDefinitionId: z.uuid() });

export const ClonePolicy = z.enum(["reject", "quarantine", "replace"]).describe("What to do when a known machine identity enrols with a new key");
export const ApprovalPolicy = z
  .enum(["token", "always"])
  .describe("token: only tokens that require approval park nodes; always: every node waits for approval");

/** The tags the service puts on every machine it creates, beside the pool's (activities/arc.ts). */
export const SERVICE_MACHINE_TAGS = ["managed-by", "flexnode-node", "flexnode-pool"] as const;
/** ARM's limit per resource (tag-resources.md, "Limitations"); the service's own tags take three of them. */
const MAX_TAGS_PER_RESOURCE = 50;

/**
 * Tags for the pool's Arc machines, held to ARM's rules here, where an admin can fix them: a name ARM refuses, or one
 * tag too many, would otherwise fail every node's machine PUT. Names are case-insensitive to ARM, so none may be one
 * of the service's own in any case (the sweeper and the event handler read those to tell whose a machine is).
 */
export const ArcTags = z
  .record(
    z
      .string()
      .min(1, "ARM refuses an empty tag name")
      .max(512, "ARM allows tag names of at most 512 characters")
      .regex(/^[^<>%&\\?/]*$/, "ARM refuses tag names containing < > % & \\ ? /"),
    z.string().max(256, "ARM allows tag values of at most 256 characters"),
    { error: keyIssueMessage },
  )
  .superRefine((tags, ctx) => {
    const names = Object.keys(tags);
    if (names.length > MAX_TAGS_PER_RESOURCE - SERVICE_MACHINE_TAGS.length)
      ctx.addIssue({
        code: "custom",
        message: `at most ${MAX_TAGS_PER_RESOURCE - SERVICE_MACHINE_TAGS.length} tags: ARM allows ${MAX_TAGS_PER_RESOURCE} per resource and the service adds ${SERVICE_MACHINE_TAGS.length}`,
      });
    const seen = new Map<string, string>();
    for (const name of names) {
      const lower = name.toLowerCase();
      if ((SERVICE_MACHINE_TAGS as readonly string[]).includes(lower))
        ctx.addIssue({ code: "custom", path: [name], message: `'${name}' is a tag the service sets on its machines (tag names are case-insensitive)` });
      else if (seen.has(lower))
        ctx.addIssue({ code: "custom", path: [name], message: `'${name}' and '${seen.get(lower)}' are the same tag to ARM (tag names are case-insensitive)` });
      seen.set(lower, name);
    }
  });

/** Tags as stored: read back as written, so a pool from before the rules above still loads and can be fixed. */
const StoredArcTags = z.record(z.string(), z.string());

function arcSpec(tags: typeof ArcTags | typeof StoredArcTags) {
  return z.strictObject({
    resourceGroupId: ResourceGroupId,
    location: z.string().regex(/^[a-z0-9]{2,40}$/, "must be an Azure region name such as eastus"),
    tags: tags.default({}),
    mode: z
      .enum(["create", "adopt"])
      .default("create")
      .describe(
        "create: the service creates each node's Arc machine. adopt: azcmagent on the node creates it (tagged flexnode-pool and flexnode-node), the service adopts it on its Event Grid write event and never deletes it",
      ),
  });
}

export const PoolSpec = z.strictObject({
  clusterResourceId: ClusterResourceId,
  arc: arcSpec(ArcTags),
  nodeLabels: Labels.default({}),
  nodeTaints: Taints.default([]),
  roleGrants: z.array(RoleGrant).max(16).default([]),
  approvalPolicy: ApprovalPolicy.default("token"),
  clonePolicy: ClonePolicy.default("reject"),
  maxInFlight: z
    .int()
    .min(1)
    .max(10_000)
    .default(20)
    .describe("Nodes of this pool in node-side work (joining or leaving the cluster) at once; more enrol and wait, their Azure side prepared"),
  maxNodes: z
    .int()
    .min(1)
    .max(1_000_000)
    .optional()
    .describe("Nodes the pool is meant to hold; with per-node roleGrants, pool creation checks them against ARM's role-assignment cap"),
});
export type PoolSpec = z.infer<typeof PoolSpec>;

export const Pool = PoolSpec.extend({
  name: PoolName,
  arc: arcSpec(StoredArcTags),
  nodeLabels: StoredLabels.default({}),
  roleGrants: z.array(StoredRoleGrant).max(16).default([]),
  inFlight: z.int().min(0),
  /** Nodes enrolled while every slot was taken: their sagas prepare the Azure side and wait for a slot (in-flight.ts). */
  waiting: z.int().min(0).default(0),
  createdAt: z.iso.datetime(),
  updatedAt: z.iso.datetime(),
  etag: z.string(),
});
export type Pool = z.infer<typeof Pool>;
/** A pool as enrolment and the node table read it: the spec without the in-flight count (a query of its own). */
export type PoolRecord = Omit<Pool, "inFlight" | "waiting">;

export const NodeStatus = z.enum(["Enrolling", "AwaitingApproval", "Onboarding", "Ready", "Failed", "Offboarding", "Offboarded"]);
export type NodeStatus = z.infer<typeof NodeStatus>;
/** Statuses that hold one of the pool's in-flight slots. */
export const IN_FLIGHT: ReadonlySet<NodeStatus> = new Set(["Enrolling", "Onboarding", "Offboarding"]);

export const TokenRecord = z.object({
  tokenId: z.string(),
  pool: PoolName,
  secretHash: z.string(),
  expiresAt: z.iso.datetime(),
  maxUses: z.int().min(1),
  uses: z.int().min(0),
  labels: StoredLabels,
  taints: Taints,
  approvalRequired: z.boolean(),
  description: z.string().optional(),
  revokedAt: z.iso.datetime().optional(),
  /** Set by the sweeper once expiresAt has passed (redemption refuses an expired token either way). */
  expiredAt: z.iso.datetime().optional(),
  createdBy: z.string(),
  createdAt: z.iso.datetime(),
  etag: z.string(),
});
export type TokenRecord = z.infer<typeof TokenRecord>;

/** What the agent reports about its machine at enrolment (all of it comes from the node: parsed, never trusted). */
/** The wire shape lives in contract/ because the agent builds it. */
export const NodeFacts = NodeFactsSchema;
export type NodeFacts = ContractNodeFacts;

/**
 * C0/C1 controls and the bidirectional overrides and isolates: in a value shown to an operator (admin API, logs, a
 * terminal) they rewrite what is displayed around them.
 */
const CONTROL = /[\p{Cc}\u202A-\u202E\u2066-\u2069]/u;

/**
 * Facts as they arrive from a node (enrolment, PUT /api/node/facts): refused if any string carries a control
 * character, naming the field. Only at the boundary: records already stored still read with `NodeFacts`.
 */
export const NodeFactsInput = NodeFacts.superRefine((facts, ctx) => {
  const walk = (value: unknown, path: (string | number)[]): void => {
    if (typeof value === "string") {
      if (CONTROL.test(value)) ctx.addIssue({ code: "custom", path, message: "must not contain control or bidirectional-override characters" });
    } else if (Array.isArray(value)) value.forEach((v, i) => walk(v, [...path, i]));
    else if (value && typeof value === "object") for (const [k, v] of Object.entries(value)) walk(v, [...path, k]);
  };
  walk(facts, []);
});

export const NodeError = z.object({ code: z.string(), message: z.string(), at: z.iso.datetime() });

/** A second key that claimed this node's machine identity, held for an admin to approve (clone policy quarantine). */
export const PendingClaim = z.object({ publicKey: z.string(), keyId: z.string(), facts: NodeFacts, tokenId: z.string(), at: z.iso.datetime() });

export const NodeRecord = z.object({
  nodeId: z.string(),
  pool: PoolName,
  status: NodeStatus,
  facts: NodeFacts,
  publicKey: z.string(),
  keyId: z.string(),
  fingerprint: z.object({ machineId: z.string(), smbiosUuid: z.string().optional() }),
  tokenId: z.string(),
  labels: StoredLabels,
  taints: Taints,
  sagaInstanceId: z.string().optional(),
  /** Enrolled into an adopt pool (its saga waits for the Arc machine); absent on rows older than the field. */
  adopt: z.boolean().optional(),
  /** Adopt pools: the Arc machine azcmagent created for this node, set when its write event arrives. */
  arcMachineId: z.string().optional(),
  createdObjects: z.array(z.string()).default([]),
  /** The pool slot (row key) the node holds while in flight, or its waiting row (clients/registry/in-flight.ts). */
  slot: z.string().optional(),
  /** When the node, having waited for a slot, took one: its onboarding's deadline counts from then (sweep.ts). */
  slotSince: z.iso.datetime().optional(),
  lastError: NodeError.optional(),
  pendingClaim: PendingClaim.optional(),
  cloneOf: z.string().optional(),
  /** Whether the node waited for an admin when it enrolled, as its enrolled event said; absent on rows older than the field. */
  approvalRequired: z.boolean().optional(),
  /**
   * When the enrolment the node waits on began, if not at its creation: a Failed node that enrolled again and waits for
   * an admin. Its enrolled (or quarantined) event is keyed on it, so it is a new event, not a duplicate of the first.
   */
  reenrolledAt: z.iso.datetime().optional(),
  createdAt: z.iso.datetime(),
  updatedAt: z.iso.datetime(),
  etag: z.string(),
});
export type NodeRecord = z.infer<typeof NodeRecord>;

export const AuditEntry = z.object({
  at: z.iso.datetime(),
  actor: z.string(),
  action: z.string(),
  objectType: z.enum(["pool", "token", "node"]),
  objectId: z.string(),
  details: z.record(z.string(), z.unknown()).optional(),
});
export type AuditEntry = z.infer<typeof AuditEntry>;
