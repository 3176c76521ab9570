/**
 * "Is the live object already what we want?" for the get-compare-put apply. The API server stores RBAC rules and
 * subjects as sent but drops empty lists and defaults `apiGroup`, so both sides are normalised before comparing;
 * otherwise every apply would look like a change and bump resourceVersion for nothing.
 */
import canonicalize from "canonicalize";

export const RBAC_GROUP = "rbac.authorization.k8s.io";

interface SubjectLike {
  kind: string;
  name: string;
  apiGroup?: string;
  namespace?: string;
}

export interface SubjectSpec {
  kind: "Group" | "User" | "ServiceAccount";
  name: string;
  namespace?: string;
}

/** Labels we set must be present with our values; labels others added are left alone. */
export function labelsSatisfied(desired: Record<string, string> | undefined, live: Record<string, string> | undefined): boolean {
  return Object.entries(desired ?? {}).every(([key, value]) => live?.[key] === value);
}

export function sameRules(desired: readonly object[], live: readonly object[] | null | undefined): boolean {
  return canonical(desired.map(pruneEmpty)) === canonical((live ?? []).map(pruneEmpty));
}

/** Subjects as the server stores them: `apiGroup` defaulted per kind (v1 defaulting), order irrelevant. */
export function normaliseSubject(subject: SubjectLike): SubjectLike {
  const out: SubjectLike = { kind: subject.kind, name: subject.name };
  const apiGroup = subject.apiGroup ?? (subject.kind === "ServiceAccount" ? "" : RBAC_GROUP);
  if (apiGroup !== "") out.apiGroup = apiGroup;
  if (subject.namespace !== undefined && subject.namespace !== "") out.namespace = subject.namespace;
  return out;
}

export function sameSubjects(desired: readonly SubjectLike[], live: readonly SubjectLike[] | null | undefined): boolean {
  const key = (list: typeof desired) =>
    list
      .map((s) => canonical(normaliseSubject(s)))
      .sort()
      .join("\n");
  return key(desired) === key(live ?? []);
}

export function sameRoleRef(desired: { kind: string; name: string }, live: { kind: string; name: string; apiGroup?: string }): boolean {
  return desired.kind === live.kind && desired.name === live.name && (live.apiGroup ?? RBAC_GROUP) === RBAC_GROUP;
}

function pruneEmpty(value: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined && v !== null && !(Array.isArray(v) && v.length === 0)));
}

function canonical(value: unknown): string {
  return canonicalize(value) ?? "";
}
