/**
 * Kubernetes `Status` bodies, as the API server's apimachinery builds them (`k8s.io/apimachinery/pkg/api/errors`):
 * same reasons, codes, message wording and `details`, so a client that branches on `reason` behaves here as it would
 * against a real cluster.
 */

export interface StatusCause {
  reason: string;
  message: string;
  field: string;
}

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  uid?: string;
  causes?: StatusCause[];
}

/** What a handler throws to answer with a failure Status. */
export class KubeStatusError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details: StatusDetails | undefined = undefined,
    /** The Status's ListMeta: an expired list's continue token for the inconsistent remainder. */
    readonly listMeta: { continue?: string } = {},
  ) {
    super(message);
  }

  toStatus(): Record<string, unknown> {
    return {
      kind: "Status",
      apiVersion: "v1",
      metadata: this.listMeta,
      status: "Failure",
      message: this.message,
      reason: this.reason,
      ...(this.details ? { details: this.details } : {}),
      code: this.code,
    };
  }
}

/** A resource as errors name it: `secrets`, `clusterrolebindings.rbac.authorization.k8s.io`. */
export interface ResourceName {
  resource: string;
  group: string;
}

function qualified(r: ResourceName): string {
  return r.group === "" ? r.resource : `${r.resource}.${r.group}`;
}

function detailsOf(r: ResourceName, name: string): StatusDetails {
  return r.group === "" ? { name, kind: r.resource } : { name, group: r.group, kind: r.resource };
}

export const statusErrors = {
  notFound: (r: ResourceName, name: string) => new KubeStatusError(404, "NotFound", `${qualified(r)} "${name}" not found`, detailsOf(r, name)),
  alreadyExists: (r: ResourceName, name: string) => new KubeStatusError(409, "AlreadyExists", `${qualified(r)} "${name}" already exists`, detailsOf(r, name)),
  conflict: (r: ResourceName, name: string, why = "the object has been modified; please apply your changes to the latest version and try again") =>
    new KubeStatusError(409, "Conflict", `Operation cannot be fulfilled on ${qualified(r)} "${name}": ${why}`, detailsOf(r, name)),
  /** 422; `kind` is the singular Kind (`Secret`), as in "Secret \"x\" is invalid: …". */
  invalid: (kind: string, group: string, name: string, causes: StatusCause[]) =>
    new KubeStatusError(422, "Invalid", `${kind} "${name}" is invalid: ${causes.map((c) => `${c.field}: ${c.message}`).join(", ")}`, {
      name,
      ...(group === "" ? {} : { group }),
      kind,
      causes,
    }),
  badRequest: (message: string) => new KubeStatusError(400, "BadRequest", message),
  /** A continue token older than the last compaction (the etcd3 store's compactedContinue): 410 Expired, with a token for the rest read inconsistently. */
  continueExpired: (inconsistentContinue: string) =>
    new KubeStatusError(
      410,
      "Expired",
      "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
      undefined,
      { continue: inconsistentContinue },
    ),
  unauthorized: () => new KubeStatusError(401, "Unauthorized", "Unauthorized"),
  forbidden: (username: string, verb: string, r: ResourceName, namespace: string | undefined) =>
    new KubeStatusError(
      403,
      "Forbidden",
      `${qualified(r)} is forbidden: User "${username}" cannot ${verb} resource "${r.resource}" in API group "${r.group}" ${namespace === undefined ? "at the cluster scope" : `in the namespace "${namespace}"`}`,
      { kind: r.resource, ...(r.group === "" ? {} : { group: r.group }) },
    ),
  pathNotFound: () => new KubeStatusError(404, "NotFound", "the server could not find the requested resource", {}),
  methodNotAllowed: () => new KubeStatusError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource", {}),
  tooLarge: () => new KubeStatusError(413, "RequestEntityTooLarge", "Request entity too large: limit is 3145728"),
};

/** Field-level causes for 422s, with the API server's wording. */
export const causes = {
  required: (field: string, detail: string): StatusCause => ({ reason: "FieldValueRequired", message: `Required value: ${detail}`, field }),
  invalid: (field: string, value: unknown, detail: string): StatusCause => ({
    reason: "FieldValueInvalid",
    message: `Invalid value: ${JSON.stringify(value)}: ${detail}`,
    field,
  }),
  unsupported: (field: string, value: unknown, supported: readonly string[]): StatusCause => ({
    reason: "FieldValueNotSupported",
    message: `Unsupported value: ${JSON.stringify(value)}: supported values: ${supported.map((s) => JSON.stringify(s)).join(", ")}`,
    field,
  }),
  tooLong: (field: string, max: number): StatusCause => ({ reason: "FieldValueTooLong", message: `Too long: must have at most ${max} bytes`, field }),
};

export function successStatus(r: ResourceName, name: string, uid: string): Record<string, unknown> {
  return { kind: "Status", apiVersion: "v1", metadata: {}, status: "Success", details: { ...detailsOf(r, name), uid } };
}

/** Reasons for injected faults without an explicit one (client-go's mapping of bare codes). */
const REASON_BY_CODE: Record<number, string> = {
  400: "BadRequest",
  401: "Unauthorized",
  403: "Forbidden",
  404: "NotFound",
  409: "Conflict",
  422: "Invalid",
  429: "TooManyRequests",
  500: "InternalError",
  503: "ServiceUnavailable",
  504: "Timeout",
};

export function defaultReason(code: number): string {
  return REASON_BY_CODE[code] ?? "Unknown";
}
