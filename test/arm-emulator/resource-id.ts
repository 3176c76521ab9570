/**
 * Resource ids and scopes. ARM treats ids case-insensitively: stores key on the lower-cased form and keep the casing
 * the resource was created with for responses.
 */

export function idKey(id: string): string {
  return trimScope(id).toLowerCase();
}

/** Leading slash, no trailing slash, no repeated slashes. */
export function trimScope(scope: string): string {
  const segments = scope.split("/").filter((s) => s.length > 0);
  return `/${segments.join("/")}`;
}

export interface ScopeParts {
  subscriptionId?: string;
  resourceGroup?: string;
}

export function scopeParts(scope: string): ScopeParts {
  const m = /^\/subscriptions\/([^/]+)(?:\/resourceGroups\/([^/]+))?/i.exec(trimScope(scope));
  if (!m) return {};
  const parts: ScopeParts = { subscriptionId: m[1]! };
  if (m[2] !== undefined) parts.resourceGroup = m[2];
  return parts;
}

/** True when `ancestor` is `scope` itself or a parent of it (segment-wise, case-insensitive). */
export function isSameOrAncestor(ancestor: string, scope: string): boolean {
  const a = idKey(ancestor);
  const s = idKey(scope);
  return a === "/" || a === s || s.startsWith(`${a}/`);
}

export function machineResourceId(subscriptionId: string, resourceGroup: string, name: string): string {
  return `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}/providers/Microsoft.HybridCompute/machines/${name}`;
}
