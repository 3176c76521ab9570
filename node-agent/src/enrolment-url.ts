/**
 * The one thing an operator hands a node: the enrolment URL, the service's base URL + `/api/enrol`, with the token in
 * the fragment: `https://<app>.azurewebsites.net/api/enrol#fnt.<id>.<secret>`. A fragment is never sent in a request,
 * so the token cannot end up in a proxy's or the service's access log; the agent moves it into the POST body.
 */
import * as z from "zod";

/** `fnt.<16 hex id>.<43-char base64url secret>`, as the service mints it. */
export const ENROLMENT_TOKEN_PATTERN = /^fnt\.[0-9a-f]{16}\.[A-Za-z0-9_-]{43}$/;
export const EnrolmentTokenSchema = z.string().regex(ENROLMENT_TOKEN_PATTERN, "must be an enrolment token (fnt.<id>.<secret>)");

export const ENROL_PATH = "/api/enrol";

const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]"]);

export class ServiceUrlError extends Error {
  readonly code = "bad_service_url";
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
    this.name = "ServiceUrlError";
  }
}

export interface EnrolmentTarget {
  /** Origin plus any path prefix in front of /api, without a trailing slash. */
  serviceUrl: string;
  /** The token from the fragment, when the URL carries one. */
  token?: string;
}

/** Plain HTTP only towards this machine (the local sandbox); anything else must be HTTPS. */
export function assertSecureUrl(url: URL, field: string): void {
  if (url.protocol === "https:") return;
  if (url.protocol === "http:" && LOOPBACK.has(url.hostname)) return;
  throw new ServiceUrlError(field, `must be https:// (plain http is accepted only for 127.0.0.1/localhost), got ${url.protocol}//${url.host}`);
}

/** Never echoes the fragment or query: either may hold the token. */
export function parseEnrolmentUrl(raw: string, field = "enrolmentUrl"): EnrolmentTarget {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ServiceUrlError(field, "is not an absolute URL (expected https://<service>/api/enrol#<token>)");
  }
  assertSecureUrl(url, field);
  if (url.username !== "" || url.password !== "") throw new ServiceUrlError(field, "must not carry user:password@");
  if (url.search !== "") {
    throw new ServiceUrlError(field, "must not have a query string: a token there reaches server logs; put the token after '#' instead");
  }
  let path = url.pathname.replace(/\/+$/, "");
  if (path.endsWith(ENROL_PATH)) path = path.slice(0, -ENROL_PATH.length);
  else if (path.includes("/api/")) throw new ServiceUrlError(field, `path must be the service's ${ENROL_PATH} (or the service's base URL)`);
  const fragment = url.hash.replace(/^#/, "").replace(/^token=/, "");
  let token: string | undefined;
  if (fragment !== "") {
    if (!ENROLMENT_TOKEN_PATTERN.test(fragment)) throw new ServiceUrlError(field, "the part after '#' is not an enrolment token (fnt.<id>.<secret>)");
    token = fragment;
  }
  return { serviceUrl: `${url.origin}${path}`, ...(token !== undefined ? { token } : {}) };
}

/** A service base URL stored in state (no fragment, no query). */
export function parseServiceUrl(raw: string, field: string): string {
  const { serviceUrl } = parseEnrolmentUrl(raw.replace(/#.*$/, ""), field);
  return serviceUrl;
}
