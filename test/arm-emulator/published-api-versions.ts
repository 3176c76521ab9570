/**
 * The api-versions Azure publishes for each resource type the emulator serves; any other well-formed version is
 * refused the way ARM refuses it (`NoRegisteredProviderFound` from a resource provider, `InvalidApiVersionParameter`
 * from ARM's own resource groups). Taken from Azure/azure-rest-api-specs (spec folders and readme tags; paths and
 * commits below and in the README). A version published after these snapshots is refused until it is added here with
 * its source: refusing a real version shows up as a failing test, accepting an invented one would hide a typo.
 */
import { ArmError } from "./arm-error.js";

export interface PublishedType {
  /** `Namespace/type` as ARM names it in errors. */
  type: string;
  versions: readonly string[];
}

/**
 * specification/hybridcompute/resource-manager/Microsoft.HybridCompute/HybridCompute/readme.md at
 * df74858bfda6128d16c98265db2a6f42e89b20ff (stable and `-preview` tags).
 */
const HYBRID_COMPUTE = [
  "2025-09-16-preview",
  "2025-08-21-preview",
  "2025-02-19-preview",
  "2025-01-13",
  "2024-11-10-preview",
  "2024-09-10-preview",
  "2024-07-31-preview",
  "2024-07-10",
  "2024-05-20-preview",
  "2024-03-31-preview",
  "2023-10-03-preview",
  "2023-06-20-preview",
  "2023-03-15-preview",
  "2022-12-27",
  "2022-12-27-preview",
  "2022-11-10",
  "2022-08-11-preview",
  "2022-05-10-preview",
  "2022-03-10",
  "2021-12-10-preview",
  "2021-06-10-preview",
  "2021-05-20",
  "2021-05-17-preview",
  "2021-04-22-preview",
  "2021-03-25-preview",
  "2021-01-28-preview",
  "2020-08-15-preview",
  "2020-08-02",
  "2020-07-30-preview",
  "2019-12-12",
] as const;

/**
 * Role assignments: specification/authorization/resource-manager/readme.azureresourceschema.md (schema tags) plus
 * stable/2022-04-01/authorization-RoleAssignmentsCalls.json, the newest stable folder. Role definitions: the
 * 2015-07-01, 2018-01-01-preview and 2022-04-01 `authorization-RoleDefinitionsCalls.json`.
 */
const ROLE_ASSIGNMENTS = [
  "2022-04-01",
  "2020-10-01-preview",
  "2020-08-01-preview",
  "2020-04-01-preview",
  "2020-03-01-preview",
  "2018-09-01-preview",
  "2018-01-01-preview",
  "2017-10-01-preview",
  "2015-07-01",
] as const;
const ROLE_DEFINITIONS = ["2022-04-01", "2018-01-01-preview", "2015-07-01"] as const;

/**
 * specification/containerservice/resource-manager/Microsoft.ContainerService/aks/readme.md at
 * bff4b7a1cc085dc86428431a46657d01fc7980ed (tags down to 2020-11-01), plus the aks/stable/2025-10-01 and
 * aks/stable/2026-04-01 folders (examples ManagedClustersGet.json, ManagedClustersListClusterUserCredentials.json).
 */
const MANAGED_CLUSTERS = [
  "2026-04-01",
  "2025-10-01",
  "2024-07-01",
  "2024-06-02-preview",
  "2024-05-01",
  "2024-05-02-preview",
  "2024-04-02-preview",
  "2024-03-02-preview",
  "2024-02-01",
  "2024-02-02-preview",
  "2024-01-01",
  "2024-01-02-preview",
  ...["11", "10", "09", "08", "07", "06", "05", "04", "03", "02"].flatMap((m) => [`2023-${m}-01`, `2023-${m}-02-preview`]),
  "2023-01-01",
  "2023-01-02-preview",
  "2022-11-01",
  "2022-11-02-preview",
  "2022-10-02-preview",
  "2022-09-01",
  "2022-09-02-preview",
  "2022-08-03-preview",
  "2022-08-02-preview",
  "2022-07-01",
  "2022-07-02-preview",
  "2022-06-01",
  "2022-06-02-preview",
  "2022-05-02-preview",
  "2022-04-01",
  "2022-04-02-preview",
  "2022-03-01",
  "2022-03-02-preview",
  "2022-02-01",
  "2022-02-02-preview",
  "2022-01-01",
  "2022-01-02-preview",
  "2021-11-01-preview",
  "2021-10-01",
  "2021-09-01",
  "2021-08-01",
  "2021-07-01",
  "2021-05-01",
  "2021-03-01",
  "2021-02-01",
  "2020-12-01",
  "2020-11-01",
];

/**
 * Resource groups: specification/resources/resource-manager/readme.md at 00b3d6c16c0e58da3534261278364b990ea42265
 * (`package-resources-*` tags) and the `package-resources-2025-04` tag (Microsoft.Resources/stable/2025-04-01).
 */
const RESOURCE_GROUPS = ["2025-04-01", "2022-09-01", "2021-04-01", "2021-01-01", "2020-10-01", "2020-08-01", "2020-06-01", "2019-10-01", "2019-08-01"];

/** Route-name prefix (see the route tables) -> the resource type it serves. */
const BY_ROUTE: Record<string, PublishedType & { armOwned?: boolean }> = {
  machines: { type: "Microsoft.HybridCompute/machines", versions: HYBRID_COMPUTE },
  roleAssignments: { type: "Microsoft.Authorization/roleAssignments", versions: ROLE_ASSIGNMENTS },
  roleDefinitions: { type: "Microsoft.Authorization/roleDefinitions", versions: ROLE_DEFINITIONS },
  managedClusters: { type: "Microsoft.ContainerService/managedClusters", versions: MANAGED_CLUSTERS },
  resourceGroups: { type: "Microsoft.Resources/resourceGroups", versions: RESOURCE_GROUPS, armOwned: true },
};

export function publishedTypeOf(routeName: string): (PublishedType & { armOwned?: boolean }) | undefined {
  return BY_ROUTE[routeName.split(".", 1)[0] ?? ""];
}

/** Throws ARM's error when `apiVersion` is not one Azure publishes for the route's resource type. */
export function checkPublishedApiVersion(routeName: string, apiVersion: string, location = "eastus"): void {
  const published = publishedTypeOf(routeName);
  if (!published) throw new Error(`route ${routeName} has no published api-version list`);
  if (published.versions.some((v) => v.toLowerCase() === apiVersion.toLowerCase())) return;
  const list = published.versions.join(", ");
  if (published.armOwned)
    throw new ArmError(
      400,
      "InvalidApiVersionParameter",
      `The api-version '${apiVersion}' is invalid. The supported versions are '${published.versions.join(",")}'.`,
    );
  const typeName = published.type.split("/").slice(1).join("/");
  throw new ArmError(
    400,
    "NoRegisteredProviderFound",
    `No registered resource provider found for location '${location}' and API version '${apiVersion}' for type '${typeName}'. The supported api-versions are '${list}'. The supported locations are '${location}'.`,
  );
}
