/**
 * RFC 9457 problem details: every 4xx/5xx the service answers carries a stable `type`, a human `title`, and for
 * validation failures the path of each failing field.
 */
import type { HttpResponseInit } from "@azure/functions";

export const PROBLEM_BASE = "https://flexnode.dev/problems/";

export interface FieldError {
  /** JSON-pointer-like path of the failing field, e.g. "/facts/machineId". */
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

export function problem(status: number, slug: string, title: string, extra: Omit<Partial<Problem>, "type" | "title" | "status"> = {}, headers: Record<string, string> = {}): HttpResponseInit {
  const body: Problem = { type: PROBLEM_BASE + slug, title, status, ...extra };
  return { status, headers: { "content-type": "application/problem+json", ...headers }, body: JSON.stringify(body) };
}
