/**
 * Maps a request path and method onto a resource type and verb the way the API server's paths are laid out:
 * `/api/v1[/namespaces/{ns}]/{resource}[/{name}]` for the core group, `/apis/{group}/{version}/…` for others.
 */
import type { ResourceRequest, ResourceType, Verb } from "./resource.js";
import { statusErrors } from "./status.js";

export interface Routed {
  type: ResourceType;
  request: Omit<ResourceRequest, "body" | "query">;
  /** e.g. `secrets.create`, for the request log. */
  route: string;
}

export class Router {
  constructor(private readonly types: readonly { apiPrefix: string; type: ResourceType }[]) {}

  /** Throws the 404/405 Status the API server gives for unknown paths and unsupported methods. */
  route(method: string, segments: readonly string[]): Routed {
    for (const { apiPrefix, type } of this.types) {
      const match = matchPath(apiPrefix.split("/").filter(Boolean), type, segments);
      if (!match) continue;
      const verb = verbOf(method, match.name !== undefined);
      if (verb === undefined || !type.verbs.includes(verb)) throw statusErrors.methodNotAllowed();
      return { type, request: { verb, namespace: match.namespace, name: match.name }, route: `${type.resource.resource}.${verb}` };
    }
    throw statusErrors.pathNotFound();
  }
}

function matchPath(prefix: string[], type: ResourceType, segments: readonly string[]): { namespace?: string; name?: string } | undefined {
  if (segments.length < prefix.length || prefix.some((p, i) => segments[i] !== p)) return undefined;
  let rest = segments.slice(prefix.length);
  let namespace: string | undefined;
  if (type.namespaced) {
    if (rest[0] !== "namespaces" || rest[1] === undefined) return undefined;
    namespace = rest[1];
    rest = rest.slice(2);
  }
  if (rest[0] !== type.resource.resource || rest.length > 2) return undefined;
  return { namespace, name: rest[1] };
}

function verbOf(method: string, named: boolean): Verb | undefined {
  switch (method.toUpperCase()) {
    case "GET":
      return named ? "get" : "list";
    case "POST":
      return named ? undefined : "create";
    case "PUT":
      return named ? "update" : undefined;
    case "DELETE":
      return named ? "delete" : undefined;
    default:
      return undefined;
  }
}
