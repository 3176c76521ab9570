/**
 * RFC 9457 problem details: every 4xx/5xx the service answers carries a stable `type`, a human `title`, and for
 * validation failures the path of each failing field.
 */
import type { HttpResponseInit } from "@azure/functions";
import type { z } from "zod";

export const PROBLEM_BASE = "https://flexnode.dev/problems/";

export interface FieldError {
  /** JSON pointer of the failing field, e.g. "/facts/machineId" ("" for the whole body). */
  path: string;
  message: string;
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail?: string;
  errors?: FieldError[];
  [extension: string]: unknown;
}

export class ProblemError extends Error {
  constructor(
    readonly status: number,
    readonly slug: string,
    readonly title: string,
    readonly extra: Omit<Partial<Problem>, "type" | "title" | "status"> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(`${status} ${slug}: ${extra.detail ?? title}`);
    this.name = "ProblemError";
  }

  toResponse(): HttpResponseInit {
    return problem(this.status, this.slug, this.title, this.extra, this.headers);
  }
}

export function problem(
  status: number,
  slug: string,
  title: string,
  extra: Omit<Partial<Problem>, "type" | "title" | "status"> = {},
  headers: Record<string, string> = {},
): HttpResponseInit {
  const body: Problem = { type: PROBLEM_BASE + slug, title, status, ...extra };
  return { status, headers: { "content-type": "application/problem+json", ...headers }, body: JSON.stringify(body) };
}

export function fieldErrors(error: z.ZodError, prefix = ""): FieldError[] {
  return error.issues.map((issue) => ({
    path: prefix + issue.path.map((p) => `/${String(p).replace(/~/g, "~0").replace(/\//g, "~1")}`).join(""),
    message: issue.message,
  }));
}
