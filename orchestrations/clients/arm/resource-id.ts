/**
 * The one reader of Azure resource ids. ARM compares ids case-insensitively and the service receives them from pools,
 * Event Grid subjects and ARM responses, so every place that needs a subscription, a resource group or a name asks
 * here, and an id of the wrong kind fails with a named error instead of a `!` on a regex match.
 */

export class ResourceIdError extends Error {
  constructor(
    readonly id: string,
    readonly expected: string,
  ) {
    super(`not ${expected}: ${id}`);
    this.name = "ResourceIdError";
  }
}

export interface ResourceGroupRef {
  subscriptionId: string;
  resourceGroup: string;
}

export interface ResourceRef extends ResourceGroupRef {
  /** e.g. `Microsoft.HybridCompute/machines`, as written in the id. */
  type: string;
  name: string;
}

const RESOURCE_GROUP = /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)$/i;
const TOP_LEVEL_RESOURCE = /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/([^/]+\/[^/]+)\/([^/]+)$/i;
const SUBSCRIPTION_PREFIX = /^\/subscriptions\/([^/]+)(?:\/|$)/i;

/** The subscription of any id under `/subscriptions/{id}` (resources, resource groups, role assignments at a scope). */
export function subscriptionOf(id: string): string {
  const m = SUBSCRIPTION_PREFIX.exec(id);
  if (!m?.[1]) throw new ResourceIdError(id, "an id under a subscription");
  return m[1];
}

export function parseResourceGroupId(id: string): ResourceGroupRef {
  const m = RESOURCE_GROUP.exec(id);
  if (!m?.[1] || !m[2]) throw new ResourceIdError(id, "a resource group id");
  return { subscriptionId: m[1], resourceGroup: m[2] };
}

/** A top-level resource of `type` (compared case-insensitively); anything else is a ResourceIdError. */
export function parseResourceId(id: string, type: string): ResourceRef {
  const m = TOP_LEVEL_RESOURCE.exec(id);
  if (!m?.[1] || !m[2] || !m[3] || !m[4] || m[3].toLowerCase() !== type.toLowerCase()) throw new ResourceIdError(id, `a ${type} id`);
  return { subscriptionId: m[1], resourceGroup: m[2], type: m[3], name: m[4] };
}

export const MANAGED_CLUSTERS = "Microsoft.ContainerService/managedClusters";
export const ARC_MACHINES = "Microsoft.HybridCompute/machines";
export const ROLE_ASSIGNMENTS = "Microsoft.Authorization/roleAssignments";

export const parseClusterId = (id: string): ResourceRef => parseResourceId(id, MANAGED_CLUSTERS);
export const parseMachineId = (id: string): ResourceRef => parseResourceId(id, ARC_MACHINES);

/** The Arc machine named `name` in a resource group (given as its id). */
export const machineIdIn = (resourceGroupId: string, name: string): string => `${resourceGroupId}/providers/${ARC_MACHINES}/${name}`;

/**
 * An id or scope as the SDK's `{scope}` / `{resourceId}` / `{roleAssignmentId}` path parameter: those templates put a
 * literal `/` before the parameter and @azure/core-client does not collapse the result, so an id with its own leading
 * `/` goes out as `https://management.azure.com//subscriptions/...`. Go's and Python's SDKs clean such paths; the JS
 * ones do not, so the service sends the id without its leading slash and the URL has a single one.
 */
export const pathArg = (id: string): string => id.replace(/^\/+/, "");
