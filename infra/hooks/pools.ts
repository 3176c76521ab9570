/**
 * azd postdeploy hook: pools. The Event Grid subscription of a pool points at the machineEvents function, which exists
 * only once the code is deployed, so pools are deployed after it, with infra/pool.bicep into each pool's Arc resource
 * group. With FLEXNODE_POOLS_FILE set (a JSON array of pools, see infra/README.md "Add a pool"), this deploys each one
 * with the Azure CLI; without it, it prints the command to run.
 *
 *   npx tsx infra/hooks/pools.ts
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
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

/** The `az` arguments that deploy infra/pool.bicep for one pool. */
export function poolDeploymentArgs(pool: PoolDeployment, service: ServiceOutputs, templateFile = "infra/pool.bicep"): string[] {
  const m = /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)$/i.exec(pool.arcResourceGroupId);
  if (!m) throw new Error(`arcResourceGroupId must be /subscriptions/<sub>/resourceGroups/<rg>: ${pool.arcResourceGroupId}`);
  const parameters: Record<string, unknown> = {
    servicePrincipalId: service.servicePrincipalId,
    functionAppResourceId: service.functionAppResourceId,
    clusterResourceId: pool.clusterResourceId,
    clusterAccess: pool.clusterAccess ?? "LocalAccounts",
    arcMode: pool.arcMode ?? "create",
    roleGrants: pool.roleGrants ?? [],
    existingSystemTopicName: pool.existingSystemTopicName ?? "",
  };
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
    templateFile,
    "--parameters",
    JSON.stringify(Object.fromEntries(Object.entries(parameters).map(([k, value]) => [k, { value }]))),
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
  const pools = JSON.parse(readFileSync(file, "utf8")) as PoolDeployment[];
  for (const pool of pools) {
    console.warn(`pools: deploying ${pool.arcResourceGroupId}`);
    const run = spawnSync("az", poolDeploymentArgs(pool, service), { stdio: "inherit", shell: process.platform === "win32" });
    if (run.status !== 0) throw new Error(`az deployment for ${pool.arcResourceGroupId} failed (${run.status ?? run.error?.message})`);
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    main();
  } catch (error) {
    console.error(`pools: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  }
}
