/**
 * The templates evaluated for the infra tests: scenarios (parameter sets for main.bicep and pool.bicep, with the ids
 * the onboarding test world uses, so the what-if test can lay the service's ARM calls over them), and readers that
 * turn a snapshot into the facts the tests compare: role grants (scope kind, role, principal, condition) and the
 * function app's settings.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { INFRA, roleAssignmentScope, roleGuid, snapshot, type PredictedResource, type Snapshot } from "./bicep.js";

export const SUBSCRIPTION = "00000000-0000-4000-8000-000000000001";
export const TENANT = "00000000-0000-4000-8000-0000000000ff";
export const LOCATION = "eastus";
export const ARC_RG = "rg-arc";
export const ARC_RG_ID = `/subscriptions/${SUBSCRIPTION}/resourceGroups/${ARC_RG}`;
export const CLUSTER_ID = `/subscriptions/${SUBSCRIPTION}/resourceGroups/rg-aks/providers/Microsoft.ContainerService/managedClusters/aks-1`;
export const SERVICE_PRINCIPAL = "5e1f0000-0000-4000-8000-0000000000aa";
export const DEPLOYER = "de910e00-0000-4000-8000-000000000001";
export const FUNCTION_APP_ID = `/subscriptions/${SUBSCRIPTION}/resourceGroups/rg-test/providers/Microsoft.Web/sites/func-test`;

// ---- roles.json

export interface RoleDefinition {
  name: string;
  actions: string[];
  dataActions: string[];
  /** A custom role a template defines (key `custom:<name>`: its GUID differs per scope). */
  custom?: boolean;
  source: string;
}

export type ScopeKind =
  "storageAccount" | "serviceBusNamespace" | "keyVault" | "applicationInsights" | "durableTaskScheduler" | "eventGridTopic" | "arcResourceGroup" | "cluster";

export interface GrantRow {
  template: "main" | "pool";
  principal: "service" | "deployer";
  scope: ScopeKind;
  role: string;
  when: Partial<Record<"durableBackend" | "deployer" | "arcMode" | "clusterAccess" | "grantsAtScope", string>>;
  condition?: string;
  codePath: string;
}

export interface RolesTable {
  definitions: Record<string, RoleDefinition>;
  grants: GrantRow[];
  notGranted: { role: string; scope: ScopeKind; why: string }[];
}

export const ROLES = JSON.parse(readFileSync(join(INFRA, "roles.json"), "utf8")) as RolesTable;

export const roleName = (guid: string) => ROLES.definitions[guid]?.name ?? guid;

// ---- scenarios

export interface MainScenario {
  name: string;
  durableBackend: "AzureStorage" | "DurableTaskScheduler";
  deployer: boolean;
  /** The Flex Consumption instance size; the template's default (2048) when absent. */
  instanceMemoryMB?: 512 | 2048 | 4096;
}

export interface PoolScenario {
  name: string;
  clusterAccess: "LocalAccounts" | "EntraOnly";
  arcMode: "create" | "adopt";
  roleGrants: { roleDefinitionId: string; scope: "cluster" | "arcResourceGroup" }[];
}

export const MAIN_SCENARIOS: MainScenario[] = [
  { name: "Azure Storage backend, deployer known", durableBackend: "AzureStorage", deployer: true },
  { name: "Durable Task Scheduler backend, no deployer, 512 MB instances", durableBackend: "DurableTaskScheduler", deployer: false, instanceMemoryMB: 512 },
];

const AKS_CLUSTER_USER = "4abbcc35-e782-43d8-92c5-2d3f1bd2253f";
const READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7";

export const POOL_SCENARIOS: PoolScenario[] = [
  // The onboarding test world's pool "edge" (test/onboard/world.ts): grants at both scopes, local accounts.
  {
    name: "create, local accounts, grants at both scopes",
    clusterAccess: "LocalAccounts",
    arcMode: "create",
    roleGrants: [
      { roleDefinitionId: AKS_CLUSTER_USER, scope: "cluster" },
      { roleDefinitionId: READER, scope: "arcResourceGroup" },
    ],
  },
  { name: "adopt, Entra-only cluster, no grants", clusterAccess: "EntraOnly", arcMode: "adopt", roleGrants: [] },
  { name: "create, local accounts, no grants", clusterAccess: "LocalAccounts", arcMode: "create", roleGrants: [] },
  {
    name: "create, Entra-only cluster, grants at the cluster only",
    clusterAccess: "EntraOnly",
    arcMode: "create",
    roleGrants: [{ roleDefinitionId: AKS_CLUSTER_USER, scope: "cluster" }],
  },
];

export function mainSnapshot(s: MainScenario): Promise<Snapshot> {
  return snapshot({
    template: "main",
    params: {
      environmentName: "test",
      location: LOCATION,
      principalId: s.deployer ? DEPLOYER : "",
      durableBackend: s.durableBackend,
      ...(s.instanceMemoryMB ? { instanceMemoryMB: s.instanceMemoryMB } : {}),
    },
    subscriptionId: SUBSCRIPTION,
    tenantId: TENANT,
    location: LOCATION,
  });
}

export function poolSnapshot(s: PoolScenario): Promise<Snapshot> {
  return snapshot({
    template: "pool",
    params: {
      servicePrincipalId: SERVICE_PRINCIPAL,
      functionAppResourceId: FUNCTION_APP_ID,
      clusterResourceId: CLUSTER_ID,
      clusterAccess: s.clusterAccess,
      arcMode: s.arcMode,
      roleGrants: s.roleGrants,
    },
    subscriptionId: SUBSCRIPTION,
    tenantId: TENANT,
    location: LOCATION,
    resourceGroup: ARC_RG,
  });
}

/** The grants roles.json says a scenario makes. */
export function expectedGrants(template: "main", s: MainScenario): GrantRow[];
export function expectedGrants(template: "pool", s: PoolScenario): GrantRow[];
export function expectedGrants(template: "main" | "pool", s: MainScenario | PoolScenario): GrantRow[] {
  return ROLES.grants.filter((g) => {
    if (g.template !== template) return false;
    return Object.entries(g.when).every(([k, v]) => {
      if (template === "main") {
        const m = s as MainScenario;
        if (k === "durableBackend") return m.durableBackend === v;
        if (k === "deployer") return (v === "set") === m.deployer;
      } else {
        const p = s as PoolScenario;
        if (k === "arcMode") return p.arcMode === v;
        if (k === "clusterAccess") return p.clusterAccess === v;
        if (k === "grantsAtScope") return (v === "some") === p.roleGrants.some((r) => r.scope === g.scope);
      }
      throw new Error(`roles.json: unknown condition ${k}=${v} on a ${template} grant`);
    });
  });
}

// ---- snapshot readers

export interface Grant {
  /** Role assignment id (scope + name). */
  id: string;
  scopeId: string;
  scope: ScopeKind | `unknown:${string}`;
  role: string;
  principal: "service" | "deployer" | `other:${string}`;
  principalType: string | undefined;
  condition: string | undefined;
  conditionVersion: string | undefined;
}

export function scopeKind(scopeId: string): Grant["scope"] {
  const kinds: [RegExp, ScopeKind][] = [
    [/\/providers\/Microsoft\.Storage\/storageAccounts\/[^/]+$/i, "storageAccount"],
    [/\/providers\/Microsoft\.ServiceBus\/namespaces\/[^/]+$/i, "serviceBusNamespace"],
    [/\/providers\/Microsoft\.KeyVault\/vaults\/[^/]+$/i, "keyVault"],
    [/\/providers\/Microsoft\.Insights\/components\/[^/]+$/i, "applicationInsights"],
    [/\/providers\/Microsoft\.DurableTask\/schedulers\/[^/]+$/i, "durableTaskScheduler"],
    [/\/providers\/Microsoft\.EventGrid\/topics\/[^/]+$/i, "eventGridTopic"],
  ];
  for (const [re, kind] of kinds) if (re.test(scopeId)) return kind;
  if (scopeId.toLowerCase() === ARC_RG_ID.toLowerCase()) return "arcResourceGroup";
  if (scopeId.toLowerCase() === CLUSTER_ID.toLowerCase()) return "cluster";
  return `unknown:${scopeId}`;
}

/** Every role assignment of a snapshot, with its principal resolved to the service identity or the deployer. */
export function grantsOf(snap: Snapshot): Grant[] {
  const identities = snap.predictedResources.filter((r) => r.type === "Microsoft.ManagedIdentity/userAssignedIdentities").map((r) => r.id.toLowerCase());
  // A custom role the template defines is known by its roles.json key (its roleName starts with the entry's name).
  const customRoles = new Map(
    resourcesOf(snap, "Microsoft.Authorization/roleDefinitions").map((d) => {
      const roleName = String((d.properties as { roleName?: string } | undefined)?.roleName ?? "");
      const entry = Object.entries(ROLES.definitions).find(([k, def]) => def.custom && k.startsWith("custom:") && roleName.startsWith(def.name));
      return [d.name.split("/").pop()!.toLowerCase(), entry?.[0] ?? `unknown custom role ${roleName}`];
    }),
  );
  return snap.predictedResources
    .filter((r) => r.type === "Microsoft.Authorization/roleAssignments")
    .map((r) => {
      const p = (r.properties ?? {}) as Record<string, string | undefined>;
      const principalId = p.principalId ?? "";
      const ref = /^\[reference\('([^']+)', '[^']+'\)\.principalId\]$/.exec(principalId);
      const principal: Grant["principal"] =
        principalId === SERVICE_PRINCIPAL || (ref && identities.includes(ref[1]!.toLowerCase()))
          ? "service"
          : principalId === DEPLOYER
            ? "deployer"
            : `other:${principalId}`;
      const scopeId = roleAssignmentScope(r.id);
      return {
        id: r.id,
        scopeId,
        scope: scopeKind(scopeId),
        role: customRoles.get(roleGuid(p.roleDefinitionId ?? "")) ?? roleGuid(p.roleDefinitionId ?? ""),
        principal,
        principalType: p.principalType,
        condition: p.condition,
        conditionVersion: p.conditionVersion,
      };
    });
}

export function resourcesOf(snap: Snapshot, type: string): PredictedResource[] {
  return snap.predictedResources.filter((r) => r.type.toLowerCase() === type.toLowerCase());
}

/** The function app's settings (Microsoft.Web/sites/config appsettings), values as the snapshot has them. */
export function appSettingsOf(snap: Snapshot): Record<string, string> {
  const config = snap.predictedResources.find((r) => r.type === "Microsoft.Web/sites/config" && r.id.endsWith("/config/appsettings"));
  if (!config) throw new Error("no appsettings in the snapshot");
  return config.properties as Record<string, string>;
}

/**
 * The role GUID sets, principal types and refused principal ids of an ABAC condition, for write (@Request) and
 * delete (@Resource), or undefined when the condition is not of the one shape the templates generate (reference §2.5,
 * plus the clause refusing the service's own principal).
 */
export interface ConditionBranch {
  roles: string[];
  principalTypes: string[];
  refusedPrincipals: string[];
}

export function parseCondition(condition: string): { write: ConditionBranch; delete: ConditionBranch } | undefined {
  const guidSet = String.raw`\{([0-9a-fA-F-]{36}(?:, [0-9a-fA-F-]{36})*)\}`;
  const branch = (action: "write" | "delete", source: "Request" | "Resource") =>
    String.raw`\(\(!\(ActionMatches\{'Microsoft\.Authorization/roleAssignments/${action}'\}\)\) OR \(@${source}\[Microsoft\.Authorization/roleAssignments:RoleDefinitionId\] ForAnyOfAnyValues:GuidEquals ${guidSet} AND @${source}\[Microsoft\.Authorization/roleAssignments:PrincipalType\] ForAnyOfAnyValues:StringEqualsIgnoreCase \{('[A-Za-z]+'(?:, '[A-Za-z]+')*)\} AND @${source}\[Microsoft\.Authorization/roleAssignments:PrincipalId\] ForAnyOfAllValues:GuidNotEquals ${guidSet}\)\)`;
  const m = new RegExp(`^${branch("write", "Request")} AND ${branch("delete", "Resource")}$`).exec(condition);
  if (!m) return undefined;
  const list = (s: string) => s.split(", ").map((x) => x.replace(/'/g, "").toLowerCase());
  return {
    write: { roles: list(m[1]!), principalTypes: list(m[2]!), refusedPrincipals: list(m[3]!) },
    delete: { roles: list(m[4]!), principalTypes: list(m[5]!), refusedPrincipals: list(m[6]!) },
  };
}
