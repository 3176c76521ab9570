/**
 * The API server's answers as the client reads them, validated at the boundary: only the fields the client relies on
 * are required, everything else passes through untouched (an update must send back what it did not mean to change).
 */
import { z } from "zod";

const StringMap = z.record(z.string(), z.string());

export const ObjectMeta = z.looseObject({
  name: z.string(),
  namespace: z.string().optional(),
  uid: z.string().optional(),
  resourceVersion: z.string().optional(),
  labels: StringMap.optional(),
});

export const Secret = z.looseObject({
  metadata: ObjectMeta,
  type: z.string().optional(),
  data: StringMap.optional(),
});

export const SecretList = z.looseObject({
  metadata: z.looseObject({ continue: z.string().optional() }).optional(),
  items: z.array(Secret).nullable(),
});

export const NodeList = z.looseObject({
  metadata: z.looseObject({ continue: z.string().optional() }).optional(),
  items: z.array(z.looseObject({ metadata: ObjectMeta })).nullable(),
});

export const PolicyRule = z.looseObject({});

export const ClusterRole = z.looseObject({
  metadata: ObjectMeta,
  rules: z.array(PolicyRule).nullish(),
});
export type ClusterRole = z.infer<typeof ClusterRole>;

export const RoleRef = z.looseObject({ apiGroup: z.string().optional(), kind: z.string(), name: z.string() });
export const Subject = z.looseObject({ kind: z.string(), name: z.string(), apiGroup: z.string().optional(), namespace: z.string().optional() });

export const ClusterRoleBinding = z.looseObject({
  metadata: ObjectMeta,
  roleRef: RoleRef,
  subjects: z.array(Subject).nullish(),
});
export type ClusterRoleBinding = z.infer<typeof ClusterRoleBinding>;

export const Node = z.looseObject({
  metadata: ObjectMeta,
  status: z
    .looseObject({
      conditions: z.array(z.looseObject({ type: z.string(), status: z.string() })).nullish(),
    })
    .optional(),
});
