/**
 * Errors from the Kubernetes API. A non-2xx answer the caller did not ask to map becomes a KubeApiError carrying the
 * `Status.reason`, so the saga can branch on `Conflict`, `Forbidden`, `Unauthorized`… without parsing messages.
 * Bodies that are not a Status (a proxy's HTML page, an empty 502) get the reason client-go would infer from the code.
 */
import { z } from "zod";

/** The fields of a `metav1.Status` the client reads; everything else is kept for diagnostics. */
const StatusBody = z.looseObject({
  kind: z.literal("Status"),
  status: z.string().optional(),
  message: z.string().optional(),
  reason: z.string().optional(),
  code: z.number().optional(),
  details: z.looseObject({}).optional(),
});
export type KubeStatus = z.infer<typeof StatusBody>;

/** client-go's reasons for a bare status code (`NewGenericServerResponse`). */
const REASON_BY_CODE: Record<number, string> = {
  400: "BadRequest",
  401: "Unauthorized",
  403: "Forbidden",
  404: "NotFound",
  405: "MethodNotAllowed",
  406: "NotAcceptable",
  409: "Conflict",
  410: "Expired",
  413: "RequestEntityTooLarge",
  415: "UnsupportedMediaType",
  422: "Invalid",
  429: "TooManyRequests",
  500: "InternalError",
  503: "ServiceUnavailable",
  504: "Timeout",
};

export function parseStatus(body: unknown): KubeStatus | undefined {
  const parsed = StatusBody.safeParse(body);
  return parsed.success ? parsed.data : undefined;
}

export function statusReason(status: number, body: unknown): string {
  const reason = parseStatus(body)?.reason;
  return reason !== undefined && reason !== "" ? reason : (REASON_BY_CODE[status] ?? "Unknown");
}

export class KubeApiError extends Error {
  override readonly name = "KubeApiError";
  /** HTTP status code. */
  readonly status: number;
  /** Kubernetes `Status.reason` (e.g. `AlreadyExists`, `Conflict`, `Invalid`), or the code's default. */
  readonly reason: string;
  /** The Status body when the server sent one. */
  readonly details: KubeStatus | undefined;

  constructor(init: { status: number; reason: string; message: string; details?: KubeStatus }) {
    super(init.message);
    this.status = init.status;
    this.reason = init.reason;
    this.details = init.details;
  }

  static fromResponse(method: string, path: string, status: number, body: unknown): KubeApiError {
    const parsed = parseStatus(body);
    const reason = statusReason(status, body);
    const detail = parsed?.message ?? (typeof body === "string" && body.length > 0 ? body.slice(0, 200) : "no Status body");
    return new KubeApiError({ status, reason, message: `${method} ${path}: ${status} ${reason}: ${detail}`, details: parsed });
  }
}

/** A 2xx answer whose body is not the object the API promises: a wrong endpoint or a broken proxy, not a retryable state. */
export class KubeResponseError extends Error {
  override readonly name = "KubeResponseError";
}

/** The request did not complete within the client's `timeoutMs` (network-level, like ECONNRESET). */
export class KubeTimeoutError extends Error {
  override readonly name = "KubeTimeoutError";
  readonly code = "ETIMEDOUT";
}
