/**
 * Request bodies as the API server decodes them: a JSON object of the right apiVersion/kind with known field types.
 * A body that does not decode is a 400 BadRequest (the server's decoding error), before any validation (422).
 */
import { z } from "zod";
import { statusErrors } from "./status.js";

const StringMap = z.record(z.string(), z.string());

export const BodyMeta = z.looseObject({
  name: z.string().optional(),
  generateName: z.string().optional(),
  namespace: z.string().optional(),
  resourceVersion: z.string().optional(),
  uid: z.string().optional(),
  labels: StringMap.nullish(),
  annotations: StringMap.nullish(),
});
export type BodyMeta = z.infer<typeof BodyMeta>;

const typed = (apiVersion: string, kind: string) => ({
  apiVersion: z.literal(apiVersion).optional(),
  kind: z.literal(kind).optional(),
  metadata: BodyMeta.default({}),
});

export const SecretBody = z.looseObject({
  ...typed("v1", "Secret"),
  type: z.string().optional(),
  data: StringMap.nullish(),
  stringData: StringMap.nullish(),
  immutable: z.boolean().optional(),
});

const Strings = z.array(z.string()).nullish();
export const PolicyRuleBody = z.strictObject({
  verbs: z.array(z.string()).nullish(),
  apiGroups: Strings,
  resources: Strings,
  resourceNames: Strings,
  nonResourceURLs: Strings,
});
export type PolicyRule = z.infer<typeof PolicyRuleBody>;

export const ClusterRoleBody = z.looseObject({
  ...typed("rbac.authorization.k8s.io/v1", "ClusterRole"),
  rules: z.array(PolicyRuleBody).nullish(),
});

export const SubjectBody = z.strictObject({ kind: z.string(), name: z.string(), apiGroup: z.string().optional(), namespace: z.string().optional() });
export type SubjectBody = z.infer<typeof SubjectBody>;

export const ClusterRoleBindingBody = z.looseObject({
  ...typed("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
  roleRef: z.strictObject({ apiGroup: z.string(), kind: z.string(), name: z.string() }),
  subjects: z.array(SubjectBody).nullish(),
});

export const DeleteOptionsBody = z.looseObject({
  apiVersion: z.string().optional(),
  kind: z.literal("DeleteOptions").optional(),
  preconditions: z.strictObject({ uid: z.string().nullish(), resourceVersion: z.string().nullish() }).nullish(),
});

export function decode<T extends z.ZodType>(schema: T, body: unknown, what: string): z.infer<T> {
  const parsed = schema.safeParse(body);
  if (!parsed.success) throw statusErrors.badRequest(`unable to decode ${what}: ${z.prettifyError(parsed.error)}`);
  return parsed.data;
}
