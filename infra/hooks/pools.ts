/**
 * azd postdeploy hook: pools. The Event Grid subscription of a pool points at the machineEvents function, which exists
 * only once the code is deployed, so pools are deployed after it, with infra/pool.bicep into each pool's Arc resource
 * group. With FLEXNODE_POOLS_FILE set (a JSON array of pools, see infra/README.md "Add a pool"), this deploys each one
 * with the Azure CLI, each with the union of the roleGrants of the pools sharing its scopes; without it, it prints the
 * command to run.
 *
 *   npx tsx infra/hooks/pools.ts
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

export interface PoolDeployment {
  /** The pool's Arc resource group id: /subscriptions/<sub>/resourceGroups/<rg>. */
  arcResourceGroupId: string;
  clusterResourceId: string;
  clusterAccess?: "LocalAccounts" | "EntraOnly";
  arcMode?: "create" | "adopt";
  roleGrants?: { roleDefinitionId: string; scope: "cluster" | "arcResourceGroup" }[];
  existingSystemTopicName?: string;
}

export interface ServiceOutputs {
  servicePrincipalId: string;
  functionAppResourceId: string;
}

type RoleGrant = NonNullable<PoolDeployment["roleGrants"]>[number];

/**
 * Each pool with the roleGrants of every pool that shares its scopes. The service's RBAC Administrator assignment at a
 * scope is one per scope and role (its name is the scope, principal and role), so deploying pools one by one with
 * their own grants would leave the last one's ABAC condition in force, and the other pools' grants would be refused.
 */
export function withSharedRoleGrants(pools: PoolDeployment[]): PoolDeployment[] {
  const byScope = new Map<string, Map<string, RoleGrant>>();
  const scopeKey = (pool: PoolDeployment, scope: RoleGrant["scope"]) =>
    `${scope} ${(scope === "cluster" ? pool.clusterResourceId : pool.arcResourceGroupId).toLowerCase()}`;
  for (const pool of pools) {
    for (const grant of pool.roleGrants ?? []) {
      const key = scopeKey(pool, grant.scope);
      const grants = byScope.get(key) ?? new Map<string, RoleGrant>();
      grants.set(grant.roleDefinitionId.toLowerCase(), { roleDefinitionId: grant.roleDefinitionId.toLowerCase(), scope: grant.scope });
      byScope.set(key, grants);
    }
  }
  return pools.map((pool) => ({
    ...pool,
    roleGrants: (["cluster", "arcResourceGroup"] as const).flatMap((scope) =>
      [...(byScope.get(scopeKey(pool, scope))?.values() ?? [])].sort((a, b) => a.roleDefinitionId.localeCompare(b.roleDefinitionId)),
    ),
  }));
}

/** infra/pool.bicep's parameters for one pool, in the deployment parameters file format. */
export function poolParameters(pool: PoolDeployment, service: ServiceOutputs): Record<string, { value: unknown }> {
  const parameters: Record<string, unknown> = {
    servicePrincipalId: service.servicePrincipalId,
    functionAppResourceId: service.functionAppResourceId,
    clusterResourceId: pool.clusterResourceId,
    clusterAccess: pool.clusterAccess ?? "LocalAccounts",
    arcMode: pool.arcMode ?? "create",
    roleGrants: pool.roleGrants ?? [],
    existingSystemTopicName: pool.existingSystemTopicName ?? "",
  };
  return Object.fromEntries(Object.entries(parameters).map(([k, value]) => [k, { value }]));
}

/**
 * The `az` arguments that deploy infra/pool.bicep for one pool. With `parametersFile` (what the hook runs), the
 * parameters are read from that file (`@file`): JSON on a command line loses its quotes through Windows cmd, which
 * `az` (az.cmd) needs there. Without it, they are inline (the command printed for a person to copy).
 */
export function poolDeploymentArgs(pool: PoolDeployment, service: ServiceOutputs, options: { templateFile?: string; parametersFile?: string } = {}): string[] {
  const m = /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)$/i.exec(pool.arcResourceGroupId);
  if (!m) throw new Error(`arcResourceGroupId must be /subscriptions/<sub>/resourceGroups/<rg>: ${pool.arcResourceGroupId}`);
  const name = `flexnode-pool-${m[2]!.toLowerCase()}`.slice(0, 64);
  return [
    "deployment",
    "group",
    "create",
    "--subscription",
    m[1]!,
    "--resource-group",
    m[2]!,
    "--name",
    name,
    "--template-file",
    options.templateFile ?? "infra/pool.bicep",
    "--parameters",
    options.parametersFile ? `@${options.parametersFile}` : JSON.stringify(poolParameters(pool, service)),
  ];
}

function main(): void {
  const service: ServiceOutputs = {
    servicePrincipalId: process.env.FLEXNODE_SERVICE_PRINCIPAL_ID ?? "<FLEXNODE_SERVICE_PRINCIPAL_ID>",
    functionAppResourceId: process.env.FLEXNODE_FUNCTION_APP_ID ?? "<FLEXNODE_FUNCTION_APP_ID>",
  };
  const file = process.env.FLEXNODE_POOLS_FILE;
  if (!file) {
    const example = poolDeploymentArgs(
      { arcResourceGroupId: "/subscriptions/<sub>/resourceGroups/<arc-rg>", clusterResourceId: "<AKS cluster resource id>", roleGrants: [] },
      service,
    );
    console.warn(
      [
        'pools: FLEXNODE_POOLS_FILE is not set, so no pool was deployed. To add a pool (infra/README.md "Add a pool"):',
        `  az ${example.map((a) => (/[\s"{}<>[\]]/.test(a) ? `'${a}'` : a)).join(" ")}`,
      ].join("\n"),
    );
    return;
  }
  const pools = withSharedRoleGrants(JSON.parse(readFileSync(file, "utf8")) as PoolDeployment[]);
  const dir = mkdtempSync(join(tmpdir(), "flexnode-pools-"));
  try {
    for (const [i, pool] of pools.entries()) {
      console.warn(`pools: deploying ${pool.arcResourceGroupId}`);
      const parametersFile = join(dir, `pool-${i}.parameters.json`);
      writeFileSync(parametersFile, JSON.stringify({ $schema: PARAMETERS_SCHEMA, contentVersion: "1.0.0.0", parameters: poolParameters(pool, service) }));
      const args = poolDeploymentArgs(pool, service, { parametersFile });
      // az is az.cmd on Windows, which only a shell runs; cmd splits unquoted arguments at spaces (a temp path may have some).
      const windows = process.platform === "win32";
      const run = spawnSync("az", windows ? args.map((a) => (/\s/.test(a) ? `"${a}"` : a)) : args, { stdio: "inherit", shell: windows });
      if (run.status !== 0) throw new Error(`az deployment for ${pool.arcResourceGroupId} failed (${run.status ?? run.error?.message})`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const PARAMETERS_SCHEMA = "https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#";

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    main();
  } catch (error) {
    console.error(`pools: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  }
}
