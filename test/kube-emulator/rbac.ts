/**
 * `/apis/rbac.authorization.k8s.io/v1/clusterroles` and `/clusterrolebindings`: create, get, list, update (PUT with
 * optimistic concurrency; create-on-update as RBAC allows), delete. Subjects get their `apiGroup` defaulted and a
 * binding's roleRef cannot change, as on the API server. The built-in bootstrap policy objects exist from the start
 * and come back on reset().
 */
import { BUILT_IN_CLUSTER_ROLE_BINDINGS, BUILT_IN_CLUSTER_ROLES, builtInMetadata } from "./builtin-roles.js";
import type { KubeObject, NewObject, ObjectStore, Revisions } from "./object-store.js";
import { checkDeletePreconditions, checkUpdate, listResponse, nameForCreate, presentMap } from "./object-writes.js";
import type { RbacView } from "./rbac-authorizer.js";
import { ClusterRoleBindingBody, ClusterRoleBody, decode, type BodyMeta, type PolicyRule, type SubjectBody } from "./request-body.js";
import type { HandlerResult, ResourceRequest, ResourceType } from "./resource.js";
import { causes, statusErrors, successStatus, type ResourceName, type StatusCause } from "./status.js";
import * as validate from "./validation.js";

export const RBAC_GROUP = "rbac.authorization.k8s.io";
const API_VERSION = `${RBAC_GROUP}/v1`;

/** What differs between the two types: decoding + validating a body into the stored fields. */
interface Kind {
  resource: ResourceName;
  kind: string;
  /** Decodes and validates; returns metadata and the type's own fields. */
  read(body: unknown): { meta: BodyMeta; fields: Record<string, unknown>; problems: StatusCause[] };
  /** Extra update rules (roleRef immutability). */
  checkUpdate?(existing: KubeObject, fields: Record<string, unknown>): StatusCause[];
}

class ClusterScoped implements ResourceType {
  readonly namespaced = false;
  readonly verbs = ["get", "list", "create", "update", "delete"] as const;
  readonly resource: ResourceName;

  constructor(
    private readonly kind: Kind,
    readonly store: ObjectStore,
    private readonly revisions: Revisions,
  ) {
    this.resource = kind.resource;
  }

  handle(request: ResourceRequest): HandlerResult {
    switch (request.verb) {
      case "list":
        return { status: 200, body: listResponse(this.kind.kind, API_VERSION, this.store.list(), request.query, this.revisions) };
      case "get":
        return { status: 200, body: this.require(request.name!) };
      case "create":
        return { status: 201, body: this.create(request.body) };
      case "update":
        return this.update(request.name!, request.body);
      case "delete": {
        const existing = this.require(request.name!);
        checkDeletePreconditions(this.resource, existing, request.body);
        this.store.delete(undefined, existing.metadata.name);
        return { status: 200, body: successStatus(this.resource, existing.metadata.name, existing.metadata.uid) };
      }
    }
  }

  private create(body: unknown): KubeObject {
    const { meta, fields, problems } = this.kind.read(body);
    const name = nameForCreate(meta, undefined);
    if (name === undefined) throw statusErrors.invalid(this.kind.kind, RBAC_GROUP, "", [causes.required("metadata.name", "name or generateName is required")]);
    const all = [...validate.pathSegmentName("metadata.name", name), ...validate.labels("metadata.labels", meta.labels ?? undefined), ...problems];
    if (all.length > 0) throw statusErrors.invalid(this.kind.kind, RBAC_GROUP, name, all);
    if (this.store.get(undefined, name)) throw statusErrors.alreadyExists(this.resource, name);
    return this.store.create(this.object(name, meta, fields));
  }

  private update(name: string, body: unknown): HandlerResult {
    const { meta, fields, problems } = this.kind.read(body);
    const existing = this.store.get(undefined, name);
    checkUpdate(this.resource, name, meta, existing);
    const all = [
      ...validate.labels("metadata.labels", meta.labels ?? undefined),
      ...problems,
      ...(existing ? (this.kind.checkUpdate?.(existing, fields) ?? []) : []),
    ];
    if (all.length > 0) throw statusErrors.invalid(this.kind.kind, RBAC_GROUP, name, all);
    if (!existing) return { status: 201, body: this.store.create(this.object(name, meta, fields)) };
    return { status: 200, body: this.store.replace(existing, this.object(name, meta, fields)) };
  }

  private object(name: string, meta: BodyMeta, fields: Record<string, unknown>): NewObject {
    return {
      apiVersion: API_VERSION,
      kind: this.kind.kind,
      metadata: { name, labels: presentMap(meta.labels), annotations: presentMap(meta.annotations) },
      ...fields,
    };
  }

  private require(name: string): KubeObject {
    const found = this.store.get(undefined, name);
    if (!found) throw statusErrors.notFound(this.resource, name);
    return found;
  }
}

const clusterRoleKind: Kind = {
  resource: { resource: "clusterroles", group: RBAC_GROUP },
  kind: "ClusterRole",
  read(body) {
    const role = decode(ClusterRoleBody, body, "ClusterRole");
    const problems: StatusCause[] = [];
    const rules = (role.rules ?? []).map((rule, i) => {
      problems.push(...ruleProblems(rule, `rules[${i}]`));
      return omitEmpty(rule);
    });
    return { meta: role.metadata, fields: rules.length > 0 ? { rules } : {}, problems };
  },
};

const clusterRoleBindingKind: Kind = {
  resource: { resource: "clusterrolebindings", group: RBAC_GROUP },
  kind: "ClusterRoleBinding",
  read(body) {
    const binding = decode(ClusterRoleBindingBody, body, "ClusterRoleBinding");
    const problems: StatusCause[] = [];
    const { roleRef } = binding;
    if (roleRef.apiGroup !== RBAC_GROUP) problems.push(causes.unsupported("roleRef.apiGroup", roleRef.apiGroup, [RBAC_GROUP]));
    if (roleRef.kind !== "ClusterRole") problems.push(causes.unsupported("roleRef.kind", roleRef.kind, ["ClusterRole"]));
    if (roleRef.name === "") problems.push(causes.required("roleRef.name", ""));
    const subjects = (binding.subjects ?? []).map((s, i) => {
      const subject = defaultSubject(s);
      problems.push(...subjectProblems(subject, `subjects[${i}]`));
      return subject;
    });
    return { meta: binding.metadata, fields: { roleRef, ...(subjects.length > 0 ? { subjects } : {}) }, problems };
  },
  checkUpdate(existing, fields) {
    const before = JSON.stringify(existing["roleRef"]);
    const after = JSON.stringify(fields["roleRef"]);
    return before === after ? [] : [causes.invalid("roleRef", fields["roleRef"], "cannot change roleRef")];
  },
};

/** v1 defaulting: User and Group subjects belong to the RBAC API group, ServiceAccounts to the core group. */
function defaultSubject(s: SubjectBody): SubjectBody {
  if (s.apiGroup !== undefined && s.apiGroup !== "") return s;
  return s.kind === "User" || s.kind === "Group" ? { ...s, apiGroup: RBAC_GROUP } : s;
}

function subjectProblems(s: SubjectBody, field: string): StatusCause[] {
  if (s.name === "") return [causes.required(`${field}.name`, "")];
  switch (s.kind) {
    case "ServiceAccount":
      if (s.apiGroup !== undefined && s.apiGroup !== "") return [causes.unsupported(`${field}.apiGroup`, s.apiGroup, [""])];
      return s.namespace ? [] : [causes.required(`${field}.namespace`, "")];
    case "User":
    case "Group":
      return s.apiGroup === RBAC_GROUP ? [] : [causes.unsupported(`${field}.apiGroup`, s.apiGroup, [RBAC_GROUP])];
    default:
      return [causes.unsupported(`${field}.kind`, s.kind, ["ServiceAccount", "User", "Group"])];
  }
}

function ruleProblems(rule: PolicyRule, field: string): StatusCause[] {
  const out: StatusCause[] = [];
  if ((rule.verbs ?? []).length === 0) out.push(causes.required(`${field}.verbs`, "verbs must contain at least one value"));
  const nonResource = (rule.nonResourceURLs ?? []).length > 0;
  const resource = (rule.resources ?? []).length > 0;
  if (nonResource && resource)
    out.push(causes.invalid(`${field}.nonResourceURLs`, rule.nonResourceURLs, "rules cannot apply to both regular resources and non-resource URLs"));
  if (!nonResource && (rule.apiGroups ?? []).length === 0) out.push(causes.required(`${field}.apiGroups`, "resource rules must supply at least one api group"));
  if (!nonResource && !resource) out.push(causes.required(`${field}.resources`, "resource rules must supply at least one resource"));
  return out;
}

/** The server serialises rules with omitempty: empty lists vanish. */
function omitEmpty(rule: PolicyRule): PolicyRule {
  return Object.fromEntries(Object.entries(rule).filter(([, v]) => Array.isArray(v) && v.length > 0)) as PolicyRule;
}

export class Rbac implements RbacView {
  readonly clusterRoles: ClusterScoped;
  readonly clusterRoleBindings: ClusterScoped;

  constructor(roles: ObjectStore, bindings: ObjectStore, revisions: Revisions) {
    this.clusterRoles = new ClusterScoped(clusterRoleKind, roles, revisions);
    this.clusterRoleBindings = new ClusterScoped(clusterRoleBindingKind, bindings, revisions);
    this.seed();
  }

  /** Forgets everything but the built-in policy, which is restored to its original state. */
  reset(): void {
    this.clusterRoles.store.clear();
    this.clusterRoleBindings.store.clear();
    this.seed();
  }

  bindings(): { name: string; roleName: string; subjects: SubjectBody[] }[] {
    return this.clusterRoleBindings.store.list().map((b) => ({
      name: b.metadata.name,
      roleName: (b["roleRef"] as { name: string }).name,
      subjects: (b["subjects"] as SubjectBody[] | undefined) ?? [],
    }));
  }

  rules(clusterRole: string): PolicyRule[] | undefined {
    const role = this.clusterRoles.store.get(undefined, clusterRole);
    return role ? ((role["rules"] as PolicyRule[] | undefined) ?? []) : undefined;
  }

  private seed(): void {
    for (const role of BUILT_IN_CLUSTER_ROLES) {
      this.clusterRoles.store.create({
        apiVersion: API_VERSION,
        kind: "ClusterRole",
        metadata: { name: role.name, ...structuredClone(builtInMetadata) },
        rules: structuredClone(role.rules),
      });
    }
    for (const binding of BUILT_IN_CLUSTER_ROLE_BINDINGS) {
      this.clusterRoleBindings.store.create({
        apiVersion: API_VERSION,
        kind: "ClusterRoleBinding",
        metadata: { name: binding.name, ...structuredClone(builtInMetadata) },
        roleRef: { apiGroup: RBAC_GROUP, kind: "ClusterRole", name: binding.roleName },
        subjects: binding.groups.map((name) => ({ kind: "Group", apiGroup: RBAC_GROUP, name })),
      });
    }
  }
}

export function isBuiltIn(object: KubeObject): boolean {
  return object.metadata.labels?.["kubernetes.io/bootstrapping"] === "rbac-defaults";
}
