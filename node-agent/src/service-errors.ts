/** How the service says no: RFC 9457 problem+json with a stable `type`, and for bad input the failing fields. */
import * as z from "zod";
import type { HttpResponse } from "./http-transport.js";
import { messageOf } from "./message-of.js";

const ProblemSchema = z.looseObject({
  type: z.string().optional(),
  title: z.string().optional(),
  status: z.number().optional(),
  detail: z.string().optional(),
  errors: z.array(z.looseObject({ path: z.string(), message: z.string() })).optional(),
});

export interface Problem {
  /** The slug after the service's problem base, e.g. "token-exhausted"; "unknown" when the body is not a problem. */
  type: string;
  title: string;
  detail?: string;
  errors: { path: string; message: string }[];
}

export function problemOf(response: HttpResponse): Problem {
  let json: unknown;
  try {
    json = JSON.parse(response.body);
  } catch {
    json = undefined;
  }
  const parsed = ProblemSchema.safeParse(json);
  if (!parsed.success) return { type: "unknown", title: `HTTP ${response.status}`, errors: [] };
  const p = parsed.data;
  return {
    type: (p.type ?? "unknown").replace(/^.*\/problems\//, ""),
    title: p.title ?? `HTTP ${response.status}`,
    ...(p.detail !== undefined ? { detail: p.detail } : {}),
    errors: p.errors ?? [],
  };
}

/** The service answered, and the answer is a refusal that retrying will not change. */
export class ServiceRefusedError extends Error {
  readonly code = "service_refused";
  constructor(
    readonly operation: string,
    readonly status: number,
    readonly problem: Problem,
  ) {
    const fields = problem.errors.map((e) => `${e.path || "/"}: ${e.message}`).join("; ");
    super(`${operation} refused (${status} ${problem.type}): ${problem.title}${problem.detail ? `. ${problem.detail}` : ""}${fields ? ` [${fields}]` : ""}`);
    this.name = "ServiceRefusedError";
  }
}

/** The service answered something the agent cannot read (a proxy's HTML page, a newer response shape). */
export class UnexpectedResponseError extends Error {
  readonly code = "unexpected_response";
  constructor(message: string) {
    super(message);
    this.name = "UnexpectedResponseError";
  }
}

/** Retried tries ran out; `cause` is the last failure. */
export class RetriesExhaustedError extends Error {
  readonly code = "retries_exhausted";
  constructor(operation: string, attempts: number, options: { cause: unknown }) {
    super(`${operation} failed ${attempts} times; last: ${messageOf(options.cause)}`, options);
    this.name = "RetriesExhaustedError";
  }
}

/** Statuses worth another try: throttling, a replacement in progress (409 + Retry-After), and server/proxy trouble. */
export function isRetryable(response: HttpResponse): boolean {
  if (response.status === 429 || response.status === 408 || response.status >= 500) return true;
  return response.status === 409 && response.headers["retry-after"] !== undefined;
}
