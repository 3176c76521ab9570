/**
 * Route table: a route is a method plus an anchored, case-insensitive pattern over the normalised path whose named
 * groups become parameters. A path that matches some route under another method is a 405, not a 404.
 */
import type { Caller } from "./credential.js";
import type { OpClass } from "./throttling.js";
import type { HandlerResult } from "./wire.js";

export interface RequestContext {
  method: string;
  path: string;
  /** Where the request came in; links the emulator hands out (LRO, paging) point back here. */
  origin: string;
  query: URLSearchParams;
  rawQuery: string;
  apiVersion: string;
  caller: Caller;
  /** Parsed JSON body, undefined when empty. */
  body: unknown;
  headers: Record<string, string>;
  params: Record<string, string>;
  correlationId: string;
  clientRequestId: string | undefined;
}

export interface Route {
  /** Stable name for logs, latency models and fault scripts, e.g. `machines.put`. */
  name: string;
  method: string;
  pattern: RegExp;
  handle(ctx: RequestContext): HandlerResult;
}

/** Describes the request to a latency model. */
export interface RouteInfo {
  method: string;
  path: string;
  route: string | undefined;
  opClass: OpClass;
}

export type RouteMatch = { kind: "route"; route: Route; params: Record<string, string> } | { kind: "methodNotAllowed" } | { kind: "none" };

export function matchRoute(routes: readonly Route[], method: string, path: string): RouteMatch {
  let pathKnown = false;
  for (const route of routes) {
    const m = route.pattern.exec(path);
    if (!m) continue;
    if (route.method !== method) {
      pathKnown = true;
      continue;
    }
    const params: Record<string, string> = {};
    for (const [key, value] of Object.entries(m.groups ?? {})) if (value !== undefined) params[key] = value;
    return { kind: "route", route, params };
  }
  return pathKnown ? { kind: "methodNotAllowed" } : { kind: "none" };
}
