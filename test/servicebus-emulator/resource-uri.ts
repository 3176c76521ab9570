/**
 * Resource URIs as Service Bus compares them for authorization: scheme and port do not matter, host and path are
 * case-insensitive, and a scope covers every resource its URI is a prefix of. Microsoft's SAS page says "a SAS token is
 * valid for all resources prefixed with the <resourceURI>" and nothing about path segments, so the emulator takes the
 * wider reading: `sb://ns/queue-a` covers `queue-a/$management` and also `queue-ab`. A service that relied on segments
 * would pass here only if Azure happened to be narrower; entity names must never extend one another instead.
 */
export interface ResourcePath {
  /** Lower-case host without port. */
  host: string;
  /** Lower-case, percent-decoded path segments; empty for the namespace root. */
  segments: readonly string[];
}

export function parseResourceUri(uri: string): ResourcePath | undefined {
  const match = /^(?:[a-z][a-z0-9+.-]*:\/\/)?([^/?#]+)([^?#]*)/i.exec(uri.trim());
  if (!match) return undefined;
  const host = stripPort(match[1]!.toLowerCase());
  if (host === "") return undefined;
  try {
    return { host, segments: splitPath(match[2] ?? "") };
  } catch {
    return undefined;
  }
}

/** An entity path such as `queue-a/$DeadLetterQueue`, relative to the namespace. */
export function splitPath(path: string): string[] {
  return path
    .split("/")
    .filter((segment) => segment !== "")
    .map((segment) => decodeURIComponent(segment).toLowerCase());
}

export function covers(scope: ResourcePath, resource: ResourcePath): boolean {
  if (scope.host !== resource.host) return false;
  return resource.segments.join("/").startsWith(scope.segments.join("/"));
}

export function formatResource(path: ResourcePath): string {
  return `sb://${path.host}/${path.segments.join("/")}`;
}

function stripPort(host: string): string {
  if (host.startsWith("[")) return host.slice(1, host.indexOf("]") === -1 ? undefined : host.indexOf("]"));
  // A bare IPv6 address has several colons and no port.
  if (host.split(":").length > 2) return host;
  return host.replace(/:\d*$/, "");
}
