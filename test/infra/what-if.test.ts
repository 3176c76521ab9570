/**
 * What-if, from the service's side: the real service is driven through what it does in Azure — onboarding, machine
 * events, adoption, offboarding, the sweeper removing orphans — against the ARM and Kubernetes emulators
 * (test/onboard/world.ts), and every call it made with its own identity is laid over the role assignments pool.bicep
 * makes for the same pool (evaluated by `bicep snapshot` with the world's ids):
 *   - each ARM call is one of infra/arm-operations.json, with that api-version (the table and the code cannot drift:
 *     a new operation or api-version fails until the table is updated), and the table has nothing never called;
 *   - each call is allowed: a granted role's actions (infra/roles.json definitions) cover the operation's action at
 *     a scope containing the target, and, for role assignment writes and deletes, the ABAC condition admits the
 *     role and principal type actually sent (delete: the assignment's stored ones);
 *   - each granted role is necessary: without it, some call would be refused;
 *   - on an Entra-only cluster, each Kubernetes API call the service made with its own Entra token is covered by a
 *     granted role's data actions;
 *   - every api-version the service sends is one the Bicep CLI's Azure type library knows for that resource type.
 * Data-plane roles on the app's own resources (storage, Service Bus, Key Vault, telemetry) are not observable here;
 * contract.test.ts checks them against roles.json.
 */
import { ResourceManagementClient } from "@azure/arm-resources";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, type TestContext } from "vitest";
import { emulatorCredential, type RequestLogEntry, type ResourceEvent } from "../arm-emulator/index.js";
import { admin } from "../function-app/index.js";
import type { KubeRequestLogEntry } from "../kube-emulator/index.js";
import * as worldIds from "../onboard/world.js";
import { startWorld, type World } from "../onboard/world.js";
import { bicepAvailable, INFRA, ROOT, run, type Snapshot } from "./bicep.js";
import {
  ARC_RG_ID,
  CLUSTER_ID,
  grantsOf,
  parseCondition,
  POOL_SCENARIOS,
  poolSnapshot,
  ROLES,
  roleName,
  SERVICE_PRINCIPAL,
  SUBSCRIPTION,
  type Grant,
  type PoolScenario,
} from "./templates.js";
import { pathArg } from "../../orchestrations/clients/arm/resource-id.js";

interface Operation {
  method: string;
  path: string;
  apiVersion: string;
  action: string | null;
  code: string[];
}
const OPERATIONS = (JSON.parse(await readFile(join(INFRA, "arm-operations.json"), "utf8")) as { operations: Operation[] }).operations;

const OPERATOR = "0badc0de-0000-4000-8000-000000000001";
const MACHINES = `${ARC_RG_ID}/providers/Microsoft.HybridCompute/machines`;

let missing: string | undefined;
beforeAll(async () => {
  const a = await bicepAvailable();
  if (!a.ok) {
    if (process.env.CI) throw new Error(`${a.reason} — CI installs it in .ci/run`);
    missing = a.reason;
  }
});
const needBicep = (ctx: TestContext) => {
  if (missing) ctx.skip(missing);
};

let world: World | undefined;
afterAll(async () => {
  delete process.env.SWEEP_REMOVE_ORPHANS;
  await world?.close();
});

/** Every (operation, api-version) observed over all runs, for the table check at the end. */
const observed = new Set<string>();
const opKey = (o: { method: string; path: string; apiVersion: string }) => `${o.method} ${o.path} @${o.apiVersion}`;

function templateRegex(path: string): RegExp {
  const escaped = path.replace(/[.*+?^$()|[\]\\]/g, "\\$&");
  const re = escaped.replace("{scope}", "/subscriptions/.+?").replace(/\{[a-z]+\}/g, "[^/]+");
  return new RegExp(`^${re}$`, "i");
}

function classify(entry: RequestLogEntry): Operation {
  const op = OPERATIONS.find((o) => o.method === entry.method && templateRegex(o.path).test(entry.path));
  if (!op) throw new Error(`the service called ${entry.method} ${entry.path} (api-version ${entry.apiVersion}), which infra/arm-operations.json does not list`);
  return op;
}

interface Requirement {
  call: string;
  action: string;
  target: string;
  abac?: { kind: "write" | "delete"; role: string; principalType: string; principalId: string };
}

const actionMatches = (pattern: string, action: string) =>
  new RegExp(`^${pattern.replace(/[.+?^$()|[\]\\]/g, "\\$&").replace(/\*/g, ".*")}$`, "i").test(action);
const within = (scope: string, target: string) => target.toLowerCase() === scope.toLowerCase() || target.toLowerCase().startsWith(`${scope.toLowerCase()}/`);

function allows(g: Grant, req: Requirement, plane: "actions" | "dataActions" = "actions"): boolean {
  const def = ROLES.definitions[g.role];
  if (!def || !within(g.scopeId, req.target) || !def[plane].some((p) => actionMatches(p, req.action))) return false;
  if (!g.condition) return true;
  const c = parseCondition(g.condition);
  if (!c) return false;
  if (!req.abac) return !/roleAssignments\/(write|delete)$/i.test(req.action);
  const branch = req.abac.kind === "write" ? c.write : c.delete;
  return (
    branch.roles.includes(req.abac.role.toLowerCase()) &&
    branch.principalTypes.includes(req.abac.principalType.toLowerCase()) &&
    !branch.refusedPrincipals.includes(req.abac.principalId.toLowerCase())
  );
}

/** The ARM requirements of the service's calls in a world's log (its own identity only). */
function requirements(log: readonly RequestLogEntry[]): Requirement[] {
  const reqs: Requirement[] = [];
  for (const entry of log) {
    if (entry.principalId?.toLowerCase() !== SERVICE_PRINCIPAL || entry.status === 401) continue;
    const op = classify(entry);
    expect(entry.apiVersion, `${entry.method} ${entry.path}`).toBe(op.apiVersion);
    observed.add(opKey(op));
    if (op.action === null) continue;
    const req: Requirement = { call: `${entry.method} ${entry.path}`, action: op.action, target: entry.path };
    if (op.action.endsWith("roleAssignments/write")) {
      const props = (entry.body as { properties: { roleDefinitionId: string; principalType: string; principalId: string } }).properties;
      req.abac = { kind: "write", role: props.roleDefinitionId.split("/").pop()!, principalType: props.principalType, principalId: props.principalId };
    } else if (op.action.endsWith("roleAssignments/delete")) {
      // @Resource: what the assignment being deleted holds, from the PUT that made it (by anyone).
      const put = log.filter((e) => e.method === "PUT" && e.path.toLowerCase() === entry.path.toLowerCase() && e.status < 300).at(-1);
      expect(put, `the PUT that created ${entry.path}`).toBeDefined();
      const props = (put!.body as { properties: { roleDefinitionId: string; principalType: string; principalId: string } }).properties;
      req.abac = { kind: "delete", role: props.roleDefinitionId.split("/").pop()!, principalType: props.principalType, principalId: props.principalId };
    }
    reqs.push(req);
  }
  return reqs;
}

/** Kubernetes API calls made with the service's own Entra token, as Azure RBAC data actions on the cluster. */
function kubeRequirements(log: readonly KubeRequestLogEntry[]): Requirement[] {
  const verbs: Record<string, string> = { GET: "read", POST: "write", PUT: "write", PATCH: "write", DELETE: "delete" };
  return log
    .filter((e) => e.user?.toLowerCase() === SERVICE_PRINCIPAL)
    .map((e) => {
      const s = e.path.split("/").filter(Boolean);
      // /api/v1[/namespaces/<ns>]/<resource>[/<name>] or /apis/<group>/<version>[/namespaces/<ns>]/<resource>[/<name>]
      const group = s[0] === "apis" ? `${s[1]}/` : "";
      const rest = s.slice(s[0] === "apis" ? 3 : 2);
      const resource = rest[0] === "namespaces" && rest.length > 2 ? rest[2]! : rest[0]!;
      return {
        call: `${e.method} ${e.path}`,
        action: `Microsoft.ContainerService/managedClusters/${group}${resource}/${verbs[e.method]!}`,
        target: CLUSTER_ID,
      };
    });
}

function checkCoverage(scenario: PoolScenario, snap: Snapshot, arm: Requirement[], kube: Requirement[]): void {
  const grants = grantsOf(snap).filter((g) => g.principal === "service");
  const refused = (gs: Grant[]) => [
    ...arm
      .filter((r) => !gs.some((g) => allows(g, r)))
      .map((r) => `${r.call} needs ${r.action}${r.abac ? ` for role ${roleName(r.abac.role)} / ${r.abac.principalType}` : ""}`),
    ...kube.filter((r) => !gs.some((g) => allows(g, r, "dataActions"))).map((r) => `${r.call} needs data action ${r.action}`),
  ];
  expect(refused(grants), `${scenario.name}: calls the granted roles would refuse`).toEqual([]);
  for (const g of grants) {
    const without = grants.filter((x) => x !== g);
    expect(refused(without).length, `${scenario.name}: ${roleName(g.role)} at ${g.scope} is needed by some call`).toBeGreaterThan(0);
  }
}

async function operatorPut(w: World, name: string, tags: Record<string, string>): Promise<ResourceEvent> {
  const operator = new ResourceManagementClient(emulatorCredential(OPERATOR), SUBSCRIPTION, { httpClient: w.arm.httpClient, retryOptions: { maxRetries: 0 } });
  const id = `${MACHINES}/${name}`;
  await operator.resources.beginCreateOrUpdateByIdAndWait(
    pathArg(id),
    "2025-01-13",
    { location: "eastus", identity: { type: "SystemAssigned" }, tags, properties: { osType: "linux" } },
    { updateIntervalInMs: 1 },
  );
  return w.arm.events.published.filter((e) => e.data.resourceUri === id).at(-1)!;
}
const deliver = (w: World, e: ResourceEvent) => w.app.host.invoke("machineEvents", { string: JSON.stringify(e) });
const sweepRemovingOrphans = async (w: World) => {
  process.env.SWEEP_REMOVE_ORPHANS = "true";
  try {
    return await w.app.host.invoke("sweeper", { json: JSON.stringify({ isPastDue: false }) });
  } finally {
    delete process.env.SWEEP_REMOVE_ORPHANS;
  }
};

describe("what-if: the service's calls against the roles pool.bicep grants", () => {
  it("uses the onboarding world's ids", () => {
    expect([worldIds.SUBSCRIPTION, worldIds.ARC_RG_ID, worldIds.CLUSTER_ID, worldIds.SERVICE_PRINCIPAL]).toEqual([
      SUBSCRIPTION,
      ARC_RG_ID,
      CLUSTER_ID,
      SERVICE_PRINCIPAL,
    ]);
  });

  it("create pool, local accounts, grants at both scopes: onboard, machine event, orphan removal, offboard", async (ctx) => {
    needBicep(ctx);
    const scenario = POOL_SCENARIOS[0]!;
    const snap = poolSnapshot(scenario);
    world = await startWorld({ poolSpec: { roleGrants: scenario.roleGrants } });
    const { nodeId } = await world.enrol();
    expect((await world.settle(nodeId)).output).toEqual({ status: "Ready" });
    // Somebody else's machine tagged for the pool: the handler reads it, and refuses to adopt it (a create pool).
    await deliver(world, await operatorPut(world, "h1", { "flexnode-pool": "edge", "flexnode-node": nodeId }));
    // An orphan grant the service made for a machine that no longer has a node: the sweeper finds and removes it.
    const machine = world.arm.inspect.machines().find((m) => m.id.endsWith(nodeId))!;
    const ownClients = new ResourceManagementClient(emulatorCredential(SERVICE_PRINCIPAL), SUBSCRIPTION, {
      httpClient: world.arm.httpClient,
      retryOptions: { maxRetries: 0 },
    });
    const strayId = `${MACHINES}/fn-0000000000000000000000aa`;
    const setupFrom = world.arm.requests.entries.length;
    await ownClients.resources.beginCreateOrUpdateByIdAndWait(
      pathArg(strayId),
      "2025-01-13",
      {
        location: "eastus",
        identity: { type: "SystemAssigned" },
        tags: { "managed-by": "flexnode-onboarding", "flexnode-node": "fn-0000000000000000000000aa" },
        properties: { osType: "linux" },
      },
      { updateIntervalInMs: 1 },
    );
    const setup = new Set(world.arm.requests.entries.slice(setupFrom).map((e) => e.seq));
    const removal = await sweepRemovingOrphans(world);
    expect(removal.logs.map((l) => l.message).join("\n")).toMatch(/1 orphan\(s\) found, 1 removed, 0 not removed/);
    // Decommission: reset, grants removed, machine deleted (202 + polling).
    expect((await world.app.call("POST", `/api/manage/nodes/${nodeId}/decommission`, { headers: admin })).status).toBe(202);
    expect((await world.settle(`${nodeId}:offboard`)).output).toMatchObject({ remaining: [] });
    expect(world.arm.inspect.machines().map((m) => m.id)).not.toContain(machine.id);

    const log = world.arm.requests.entries.filter((e) => !setup.has(e.seq));
    checkCoverage(scenario, await snap, requirements(log), kubeRequirements(world.kube.requests.entries));
    await world.close();
    world = undefined;
  });

  it("adopt pool, Entra-only cluster, no grants: adoption by event, onboard with the service's Entra token, sweep, offboard", async (ctx) => {
    needBicep(ctx);
    const scenario = POOL_SCENARIOS[1]!;
    const snap = poolSnapshot(scenario);
    world = await startWorld({
      entraOnlyCluster: true,
      poolSpec: { roleGrants: scenario.roleGrants, arc: { resourceGroupId: ARC_RG_ID, location: "eastus", mode: "adopt" } },
    });
    const { nodeId } = await world.enrol();
    const written = await operatorPut(world, "edge-host-17", { "flexnode-pool": "edge", "flexnode-node": nodeId });
    expect((await deliver(world, written)).logs.at(-1)?.message).toBe(`machine event ${written.id}: adopting`);
    expect((await world.settle(nodeId)).output).toEqual({ status: "Ready" });
    await sweepRemovingOrphans(world);
    expect((await world.app.call("POST", `/api/manage/nodes/${nodeId}/decommission`, { headers: admin })).status).toBe(202);
    expect((await world.settle(`${nodeId}:offboard`)).output).toMatchObject({ remaining: [] });

    const kube = kubeRequirements(world.kube.requests.entries);
    expect(kube.length, "Kubernetes calls with the service's Entra token").toBeGreaterThan(0);
    checkCoverage(scenario, await snap, requirements(world.arm.requests.entries), kube);
    await world.close();
    world = undefined;
  });

  it("infra/arm-operations.json lists exactly the operations observed, each performed by code that exists", (ctx) => {
    needBicep(ctx);
    expect([...observed].sort()).toEqual(OPERATIONS.map(opKey).sort());
    const sources = [join(ROOT, "functions"), join(ROOT, "orchestrations")];
    for (const op of OPERATIONS) {
      for (const symbol of op.code) {
        const found = sources.some((dir) => grepTree(dir, symbol));
        expect(found, `${symbol} (${op.method} ${op.path}) appears in the service's source`).toBe(true);
      }
    }
  });

  it("every api-version the service sends is known to the Bicep CLI's Azure types for that resource type, and pool.bicep reads the cluster at the service's AKS api-version", async (ctx) => {
    needBicep(ctx);
    const types = new Map<string, string>();
    for (const op of OPERATIONS) {
      const m = /providers\/(Microsoft\.[A-Za-z]+\/[A-Za-z]+)/.exec(op.path.replace(/\/locations\/.*/, ""));
      if (m && op.action !== null) types.set(`${m[1]!}@${op.apiVersion}`, m[1]!);
    }
    const dir = await mkdtemp(join(tmpdir(), "flexnode-api-versions-"));
    try {
      const lines = [...types.keys()].map((t, i) => `resource r${i} '${t}' existing = { name: 'x${i}' }\noutput o${i} string = r${i}.id`);
      await writeFile(join(dir, "probe.bicep"), `${lines.join("\n")}\n`);
      await writeFile(join(dir, "bicepconfig.json"), JSON.stringify({ analyzers: { core: { enabled: false } } }));
      const result = await run(["build", "probe.bicep", "--stdout"], dir);
      const unknown = (result.stdout + result.stderr).split("\n").filter((l) => /BCP081|does not have types available/.test(l));
      expect(unknown).toEqual([]);
      expect(result.code).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    const clusterRead = OPERATIONS.find((o) => o.action === "Microsoft.ContainerService/managedClusters/read")!;
    const poolCluster = await readFile(join(INFRA, "modules/pool-cluster.bicep"), "utf8");
    expect(poolCluster).toContain(`'Microsoft.ContainerService/managedClusters@${clusterRead.apiVersion}' existing`);
  });
});

function grepTree(dir: string, needle: string): boolean {
  return readdirSync(dir).some((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? grepTree(path, needle) : path.endsWith(".ts") && readFileSync(path, "utf8").includes(needle);
  });
}
