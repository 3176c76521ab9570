/**
 * The transport-neutral request and response the emulator's core handler works on. Both transports (the in-process
 * HttpClient and the HTTPS server) translate to and from these, so every behaviour is implemented once.
 */

export type HttpMethod = "GET" | "PUT" | "PATCH" | "POST" | "DELETE" | "HEAD" | "OPTIONS";

export interface EmulatorRequest {
  method: string;
  /** Absolute (`https://host/path?query`) or origin-relative (`/path?query`); `//subscriptions` is tolerated. */
  url: string;
  headers?: Record<string, string | string[] | undefined>;
  /** Raw request body text, as sent on the wire. */
  body?: string | undefined;
}

export interface EmulatorResponse {
  status: number;
  /** Lower-case header names. */
  headers: Record<string, string>;
  /** JSON-serialisable body, or undefined for an empty body. */
  body?: unknown;
  /** Set by an injected `drop` fault: the transport must fail the connection instead of answering. */
  dropConnection?: boolean;
}

/** What a route handler returns; the emulator adds the ARM bookkeeping headers. */
export interface HandlerResult {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export function lowerCaseHeaders(headers: EmulatorRequest["headers"]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (value === undefined) continue;
    out[name.toLowerCase()] = Array.isArray(value) ? value.join(", ") : value;
  }
  return out;
}

export function serialiseBody(body: unknown): string {
  return body === undefined ? "" : JSON.stringify(body);
}
