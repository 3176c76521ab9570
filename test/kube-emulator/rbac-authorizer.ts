/**
 * The RBAC authorizer for cluster-scoped grants: a request is allowed when some ClusterRoleBinding names the user (or
 * one of its groups) and its ClusterRole has a rule covering the verb, API group, resource[/subresource] and name.
 * `system:masters` bypasses authorization, as it does on the API server. RoleBindings are not modelled.
 */
import type { UserInfo } from "./bootstrap-tokens.js";
import type { PolicyRule, SubjectBody } from "./request-body.js";

export const MASTERS_GROUP = "system:masters";

export interface RequestAttributes {
  verb: string;
  apiGroup: string;
  /** `resource` or `resource/subresource`. */
  resource: string;
  name?: string;
}

export interface RbacView {
  bindings(): { roleName: string; subjects: SubjectBody[] }[];
  rules(clusterRole: string): PolicyRule[] | undefined;
}

export function authorize(user: UserInfo, request: RequestAttributes, rbac: RbacView): boolean {
  if (user.groups.includes(MASTERS_GROUP)) return true;
  return rbac.bindings().some((b) => b.subjects.some((s) => appliesTo(s, user)) && (rbac.rules(b.roleName) ?? []).some((r) => covers(r, request)));
}

function appliesTo(subject: SubjectBody, user: UserInfo): boolean {
  switch (subject.kind) {
    case "User":
      return subject.name === user.username;
    case "Group":
      return user.groups.includes(subject.name);
    case "ServiceAccount":
      return user.username === `system:serviceaccount:${subject.namespace ?? ""}:${subject.name}`;
    default:
      return false;
  }
}

function covers(rule: PolicyRule, request: RequestAttributes): boolean {
  const has = (list: readonly string[] | null | undefined, value: string) => (list ?? []).some((v) => v === "*" || v === value);
  return (
    has(rule.verbs, request.verb) &&
    has(rule.apiGroups, request.apiGroup) &&
    has(rule.resources, request.resource) &&
    ((rule.resourceNames ?? []).length === 0 || (request.name !== undefined && (rule.resourceNames ?? []).includes(request.name)))
  );
}
