/**
 * Least privilege and settings, as code: the templates evaluated by the real Bicep CLI (`bicep snapshot`: resource
 * ids, role assignment scopes, principals and conditions as a deployment would compute them) are compared with
 * infra/roles.json — every grant it lists is made, in every scenario where it applies, and nothing else is — and with
 * the app's settings schema (orchestrations/settings.ts): every setting the service needs is provided, secrets only as
 * Key Vault references, and nothing is set that neither the service, host.json nor the Functions host reads.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { beforeAll, describe, expect, it, type TestContext } from "vitest";
import { SettingsSchema } from "../../orchestrations/settings.js";
import { MAX_BODY_BYTES } from "../../functions/http/route.js";
import { DEPLOYED_REQUEST_BODY_SIZE_LIMIT } from "../functions-host/host.js";
import { SECRETS } from "../../infra/hooks/ensure-secrets.js";
import { PRIVILEGED_ROLES } from "../../orchestrations/clients/registry/model.js";
import { bicepAvailable, INFRA, ROOT, type Snapshot } from "./bicep.js";
import {
  ARC_RG_ID,
  appSettingsOf,
  expectedGrants,
  grantsOf,
  MAIN_SCENARIOS,
  mainSnapshot,
  parseCondition,
  POOL_SCENARIOS,
  poolSnapshot,
  resourcesOf,
  ROLES,
  roleName,
  SERVICE_PRINCIPAL,
  type Grant,
  type MainScenario,
  type PoolScenario,
} from "./templates.js";

let missing: string | undefined;
const mains = new Map<MainScenario, Snapshot>();
const pools = new Map<PoolScenario, Snapshot>();

beforeAll(async () => {
  const a = await bicepAvailable();
  if (!a.ok) {
    if (process.env.CI) throw new Error(`${a.reason} — CI installs it in .ci/run`);
    missing = a.reason;
    return;
  }
  await Promise.all([
    ...MAIN_SCENARIOS.map(async (s) => mains.set(s, await mainSnapshot(s))),
    ...POOL_SCENARIOS.map(async (s) => pools.set(s, await poolSnapshot(s))),
  ]);
}, 60_000);
const needBicep = (ctx: TestContext) => {
  if (missing) ctx.skip(missing);
};

const key = (g: { principal: string; scope: string; role: string }) => `${g.principal} → ${roleName(g.role)} (${g.role}) at ${g.scope}`;

/** Roles that may never be granted to anyone, and roles that may be granted only with an ABAC condition. */
const OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635";
const CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c";
const USER_ACCESS_ADMINISTRATOR = "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9";
const RBAC_ADMINISTRATOR = "f58310d9-a9f6-439a-9e8d-f62e7b41a168";
const READER_ROLE = "acdd72a7-3385-48ef-bd42-f606fba81ae7";

function checkNothingBroad(grants: Grant[]): void {
  for (const g of grants) {
    expect([OWNER, CONTRIBUTOR], `${key(g)} is never granted`).not.toContain(g.role);
    if (g.role === USER_ACCESS_ADMINISTRATOR || g.role === RBAC_ADMINISTRATOR) {
      expect(g.condition, `${key(g)} needs an ABAC condition`).toBeTruthy();
      expect(g.conditionVersion).toBe("2.0");
    }
    if (g.principal === "service") expect(g.principalType, `${key(g)}: principalType`).toBe("ServicePrincipal");
  }
}

describe("least privilege (infra/roles.json ↔ templates)", () => {
  for (const s of MAIN_SCENARIOS) {
    it(`main.bicep, ${s.name}: grants exactly the roles.json rows, at resource scope, nothing broad`, (ctx) => {
      needBicep(ctx);
      const grants = grantsOf(mains.get(s)!);
      expect(grants.map(key).sort()).toEqual(expectedGrants("main", s).map(key).sort());
      checkNothingBroad(grants);
      // Nothing at the subscription or resource group: every main grant is on one of the app's own resources.
      for (const g of grants) expect(g.scopeId, key(g)).toMatch(/\/providers\/[^/]+\/[^/]+\/[^/]+$/);
    });
  }

  for (const s of POOL_SCENARIOS) {
    it(`pool.bicep, ${s.name}: grants exactly the roles.json rows; RBAC Administrator only for the pool's roles at that scope, for service principals`, (ctx) => {
      needBicep(ctx);
      const grants = grantsOf(pools.get(s)!);
      expect(grants.map(key).sort()).toEqual(expectedGrants("pool", s).map(key).sort());
      checkNothingBroad(grants);
      for (const g of grants.filter((x) => x.role === RBAC_ADMINISTRATOR)) {
        const parsed = parseCondition(g.condition!);
        expect(parsed, `${key(g)}: the condition has the reference §2.5 shape`).toBeDefined();
        const poolRoles = s.roleGrants
          .filter((r) => r.scope === g.scope)
          .map((r) => r.roleDefinitionId.toLowerCase())
          .sort();
        for (const branch of [parsed!.write, parsed!.delete]) {
          expect(branch.roles.sort()).toEqual(poolRoles);
          expect(branch.principalTypes).toEqual(["serviceprincipal"]);
          // Never to the service itself: a takeover of the app must not be able to grant itself the pool's roles.
          expect(branch.refusedPrincipals, `${key(g)}: the condition refuses the service's own principal`).toEqual([SERVICE_PRINCIPAL]);
          // The condition must never let the service hand out privileged roles.
          for (const r of branch.roles) expect([OWNER, CONTRIBUTOR, USER_ACCESS_ADMINISTRATOR, RBAC_ADMINISTRATOR]).not.toContain(r);
        }
      }
    });
  }

  it("the committed main.json and pool.json name no role outside roles.json, and never Owner, Contributor or User Access Administrator", () => {
    for (const file of ["main.json", "pool.json"]) {
      let text = readFileSync(join(ROOT, "infra", file), "utf8");
      if (file === "pool.json") {
        // The one place privileged roles may appear: the list pool.bicep refuses in roleGrants, the admin API's list.
        const template = JSON.parse(text) as { variables: Record<string, unknown> };
        expect(template.variables.privilegedRoles).toEqual(Object.keys(PRIVILEGED_ROLES));
        delete template.variables.privilegedRoles;
        text = JSON.stringify(template);
      }
      for (const broad of [OWNER, CONTRIBUTOR, USER_ACCESS_ADMINISTRATOR]) expect(text, `${file} names ${broad}`).not.toContain(broad);
      // Every role definition the compiled template can assign is one roles.json defines.
      const roleIds = [...text.matchAll(/'Microsoft\.Authorization\/roleDefinitions', ([^)]+)\)/g)].map((m) => m[1]!);
      expect(roleIds.length, `${file} assigns roles`).toBeGreaterThan(0);
      const guids = [...text.matchAll(/"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"/g)].map((m) => m[1]!);
      for (const guid of guids) expect(Object.keys(ROLES.definitions), `${file}: ${guid}`).toContain(guid);
    }
  });

  it("every roles.json row is made in at least one scenario, and every role it names has a definition with a source", (ctx) => {
    needBicep(ctx);
    const made = new Set([...mains.values(), ...pools.values()].flatMap((snap) => grantsOf(snap).map(key)));
    for (const row of ROLES.grants) {
      expect(made.has(key(row)), `${key(row)} is in roles.json but no scenario makes it`).toBe(true);
      expect(ROLES.definitions[row.role]?.source, `definition of ${row.role}`).toBeTruthy();
      expect(row.codePath.length).toBeGreaterThan(20);
    }
  });

  it("the README's permission table names no role that roles.json does not account for", () => {
    const readme = readFileSync(join(ROOT, "README.md"), "utf8");
    const start = readme.indexOf("### Azure permissions of the service identity");
    expect(start, "README.md keeps its section on the service identity's permissions").toBeGreaterThanOrEqual(0);
    const rest = readme.slice(start + 4);
    const end = rest.search(/\n#{2,3} /);
    const section = end < 0 ? rest : rest.slice(0, end);
    const known = new Map<string, string>(Object.entries(ROLES.definitions).map(([guid, d]) => [d.name.toLowerCase(), guid]));
    const accounted = new Set([...ROLES.grants.map((g) => g.role), ...ROLES.notGranted.map((n) => n.role)]);
    const guids = [...section.matchAll(/`([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})`/g)].map((m) => m[1]!);
    // Role names are in single-asterisk italics (bold uses two).
    const names = [...section.matchAll(/(?<!\*)\*([A-Z][^*\n]+?)\*(?!\*)/g)].map((m) => m[1]!.trim());
    expect(names.length, "role names found in the README table").toBeGreaterThan(3);
    for (const name of names) {
      const guid = known.get(name.toLowerCase());
      expect(guid, `README role "${name}" has a definition in infra/roles.json`).toBeDefined();
      expect(accounted.has(guid!), `README role "${name}" is granted or explained in infra/roles.json`).toBe(true);
    }
    for (const guid of guids) {
      expect(ROLES.definitions[guid], `README GUID ${guid} is a role in infra/roles.json`).toBeDefined();
      expect(accounted.has(guid), `README role ${guid} is granted or explained in infra/roles.json`).toBe(true);
    }
  });

  it("infra/README.md's role table lists exactly the service identity's roles in roles.json", () => {
    const doc = readFileSync(join(ROOT, "infra/README.md"), "utf8");
    const section = doc.slice(
      doc.indexOf("## Permissions of the service identity"),
      doc.indexOf("\n## ", doc.indexOf("## Permissions of the service identity") + 3),
    );
    // A row names a built-in role by its GUID, a custom role by its roles.json key.
    const roleId = /`([0-9a-f-]{36}|custom:[a-z-]+)`/;
    const rows = section.split("\n").filter((l) => /^\| [^-]/.test(l) && roleId.test(l));
    const listed = rows.map((r) => roleId.exec(r)![1]!);
    const service = ROLES.grants.filter((g) => g.principal === "service");
    expect([...new Set(listed)].sort()).toEqual([...new Set(service.map((g) => g.role))].sort());
    for (const row of rows) {
      const guid = roleId.exec(row)![1]!;
      expect(row, `the row names ${guid} by its name`).toContain(roleName(guid));
    }
    expect(rows.length).toBe(service.length - 1); // RBAC Administrator is one row for its two scopes
  });

  it("create pools get a custom role on the Arc resource group with exactly the machine actions arm-operations.json lists there: no extensions, run commands or wildcards", (ctx) => {
    needBicep(ctx);
    const operations = (JSON.parse(readFileSync(join(INFRA, "arm-operations.json"), "utf8")) as { operations: { path: string; action: string | null }[] })
      .operations;
    // The operations on the Arc resource group's resources (the role's scope), not on role assignments (RBAC Administrator).
    const arcActions = [
      ...new Set(operations.filter((o) => o.action?.startsWith("Microsoft.HybridCompute/") && o.path.includes("/resourceGroups/{rg}/")).map((o) => o.action!)),
    ].sort();
    expect(arcActions).toEqual(["Microsoft.HybridCompute/machines/delete", "Microsoft.HybridCompute/machines/read", "Microsoft.HybridCompute/machines/write"]);
    expect([...ROLES.definitions["custom:arc-machines"]!.actions].sort()).toEqual(arcActions);
    for (const s of POOL_SCENARIOS) {
      const definitions = resourcesOf(pools.get(s)!, "Microsoft.Authorization/roleDefinitions");
      if (s.arcMode === "adopt") {
        expect(definitions, `${s.name}: adopt pools only read machines`).toEqual([]);
        continue;
      }
      expect(definitions).toHaveLength(1);
      const p = definitions[0]!.properties as {
        roleName: string;
        type: string;
        permissions: { actions: string[]; notActions: string[]; dataActions: string[] }[];
        assignableScopes: string[];
      };
      expect(p.permissions).toHaveLength(1);
      expect([...p.permissions[0]!.actions].sort(), s.name).toEqual(arcActions);
      expect(p.permissions[0]!.dataActions).toEqual([]);
      for (const action of p.permissions[0]!.actions) expect(action, "no wildcard, extension or run-command action").not.toMatch(/\*|extensions|runCommands/i);
      expect(p.assignableScopes).toEqual([ARC_RG_ID]);
      expect(p.type).toBe("CustomRole");
      // Role names are unique per tenant: the resource group's hash keeps two pools' roles apart.
      expect(p.roleName).toMatch(new RegExp(`^${ROLES.definitions["custom:arc-machines"]!.name} \\([a-z0-9]{13}\\)$`));
      // The assignment names the role defined here, at the subscription's role definition path.
      const assignment = resourcesOf(pools.get(s)!, "Microsoft.Authorization/roleAssignments").find((r) =>
        String((r.properties as { roleDefinitionId: string }).roleDefinitionId).endsWith(`/${definitions[0]!.name}`),
      );
      expect((assignment?.properties as { roleDefinitionId: string } | undefined)?.roleDefinitionId).toMatch(
        /^\/subscriptions\/[^/]+\/providers\/Microsoft\.Authorization\/roleDefinitions\/[0-9a-f-]{36}$/,
      );
    }
    // And never the built-in machine administrator, whose run commands reach every Arc server in the resource group.
    expect(readFileSync(join(INFRA, "pool.json"), "utf8")).not.toContain("cd570a14-e51a-42ad-bac8-bafd67325302");
  });

  it("pool.bicep refuses privileged roles in roleGrants (the admin API's list), naming them", async (ctx) => {
    needBicep(ctx);
    // One evaluation for all four (each costs a Bicep run); the list itself is compared with the API's above.
    const refused = Object.keys(PRIVILEGED_ROLES).map(
      (guid, i) => ({ roleDefinitionId: guid.toUpperCase(), scope: i % 2 ? "cluster" : "arcResourceGroup" }) as const,
    );
    await expect(
      poolSnapshot({
        name: "privileged",
        clusterAccess: "LocalAccounts",
        arcMode: "create",
        roleGrants: [{ roleDefinitionId: READER_ROLE, scope: "cluster" }, ...refused],
      }),
    ).rejects.toThrow(new RegExp(`roleGrants: privileged roles are refused [^\\n]*: ${refused.map((g) => g.roleDefinitionId).join(", ")}`));
  }, 60_000);

  it("roles.json GUIDs agree with the reference document's built-in role table where it lists them", (ctx) => {
    // The team's reference notes live beside the repository, not in it: a clone on its own has no copy to compare.
    const referencePath = join(ROOT, "../shared/docs/reference/azure-resource-manager.md");
    if (!existsSync(referencePath)) return ctx.skip(`no ${referencePath} beside this clone`);
    const reference = readFileSync(referencePath, "utf8");
    for (const [guid, d] of Object.entries(ROLES.definitions)) {
      const row = reference.split("\n").find((l) => l.startsWith(`| ${d.name} |`));
      if (row) expect(row, d.name).toContain(guid);
    }
  });
});

// ---- settings

/** Every file under a folder (the service's code is being reorganised: scan, do not name files). */
function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sourceFiles(path) : path.endsWith(".ts") && !path.endsWith(".test.ts") ? [path] : [];
  });
}
const SERVICE_SOURCES = [...sourceFiles(join(ROOT, "functions")), ...sourceFiles(join(ROOT, "orchestrations"))].map((f) => ({
  file: relative(ROOT, f),
  text: readFileSync(f, "utf8"),
}));
const matchesIn = (re: RegExp) => SERVICE_SOURCES.flatMap((s) => [...s.text.matchAll(re)].map((m) => m[1]!));

const SCHEMA_KEYS = Object.keys(SettingsSchema.shape);
const REQUIRED = SCHEMA_KEYS.filter((k) => !SettingsSchema.shape[k as keyof typeof SettingsSchema.shape].safeParse(undefined).success);
/** Schema settings the platform sets itself: a template must not. */
const PLATFORM = SCHEMA_KEYS.filter((k) => k.startsWith("WEBSITE_"));
/** Schema settings that must not be set in Azure, and why. */
const NOT_IN_AZURE: Record<string, string> = {
  SAGA_TIMING: "saga timing overrides for tests and the local sandbox only",
  REGISTRY_CONNECTION: "the connection-string form (local Azurite); in Azure the registry uses REGISTRY_TABLE_ENDPOINT with the identity",
  SERVICEBUS_CONNECTION: "the connection-string form (the emulator); in Azure SERVICEBUS_CONNECTION__fullyQualifiedNamespace with the identity",
  LOCAL_ADMIN_TOKEN: "the admin credential of `func start`; in Azure the admin API takes App Service authentication only",
};
/** Settings the service cannot work without (NotConfiguredError), and which settings satisfy each. */
// "ARTIFACT_CATALOG.agent (where ...)" names a part of a setting: the setting is the name before the first other character.
const NEEDED_AT_RUN_TIME = [
  ...new Set(
    matchesIn(/new NotConfiguredError\("([^"]+)"\)/g)
      .flatMap((s) => s.split(" and "))
      .map((s) => s.split(/[^A-Za-z0-9_]/)[0] ?? s),
  ),
];
const SATISFIED_BY: Record<string, string[]> = { SERVICEBUS_CONNECTION: ["SERVICEBUS_CONNECTION", "SERVICEBUS_CONNECTION__fullyQualifiedNamespace"] };
/** The secrets: only ever Key Vault references. */
const SECRET_SETTINGS = ["SERVICE_SIGNING_KEY", "SECRETS_KEY", "MAILBOX_LISTEN_KEY", "MAILBOX_SEND_KEY"];

/** Settings outside the schema that the Functions host or an extension reads, each with who reads it. */
const HOST_SETTINGS: Record<string, string> = {
  // Functions host storage and the Durable Azure Storage backend (host.json storageProvider connectionStringName
  // "AzureWebJobsStorage"), identity-based with the user-assigned identity.
  AzureWebJobsStorage__accountName: "Functions host / Durable extension",
  AzureWebJobsStorage__credential: "Functions host / Durable extension",
  AzureWebJobsStorage__clientId: "Functions host / Durable extension",
  // Application Insights in the Functions host, Entra-authenticated.
  APPLICATIONINSIGHTS_CONNECTION_STRING: "Functions host",
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: "Functions host",
  // The Service Bus extension's identity connection for the trigger's `connection: "SERVICEBUS_CONNECTION"`
  // (SERVICEBUS_CONNECTION__fullyQualifiedNamespace itself is in the schema: the service reads it too).
  SERVICEBUS_CONNECTION__credential: "Service Bus extension",
  SERVICEBUS_CONNECTION__clientId: "Service Bus extension",
  // Durable Task Scheduler backend only: host.json overrides and the connection they name.
  AzureFunctionsJobHost__extensions__durableTask__storageProvider__type: "Functions host configuration (host.json override)",
  AzureFunctionsJobHost__extensions__durableTask__storageProvider__connectionStringName: "Functions host configuration (host.json override)",
  DURABLE_TASK_SCHEDULER_CONNECTION_STRING: "Durable extension (the azureManaged provider's connectionStringName)",
  // The Node worker's command-line flags (infra/node-worker-arguments.txt).
  languageWorkers__node__arguments: "Functions host (starts the Node worker with them)",
  // The largest request body the host buffers before any function runs (default 100 MB).
  FUNCTIONS_REQUEST_BODY_SIZE_LIMIT: "Functions host",
};
/** Flex Consumption rejects or ignores these (functions-app-settings.md "Flex Consumption plan deprecations"). */
const FLEX_DEPRECATED = [
  "FUNCTIONS_WORKER_RUNTIME",
  "FUNCTIONS_EXTENSION_VERSION",
  "FUNCTIONS_WORKER_RUNTIME_VERSION",
  "WEBSITE_RUN_FROM_PACKAGE",
  "WEBSITE_CONTENTSHARE",
  "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
  "WEBSITE_NODE_DEFAULT_VERSION",
  "SCM_DO_BUILD_DURING_DEPLOYMENT",
  "ENABLE_ORYX_BUILD",
  "WEBSITE_MAX_DYNAMIC_APPLICATION_SCALE_OUT",
  "AzureWebJobsStorage",
];

const isKeyVaultReference = (v: string) => /@Microsoft\.KeyVault\(SecretUri=/.test(v);

/**
 * What the app would see once the platform resolved the settings: template expressions (values only Azure knows)
 * replaced by stand-ins of the right form, Key Vault references by secrets of the right form.
 */
function resolvedForParse(settings: Record<string, string>): Record<string, string> {
  const standIns: Record<string, string> = {
    SERVICE_SIGNING_KEY: SECRETS.find((s) => s.setting === "SERVICE_SIGNING_KEY")!.generate(),
    SECRETS_KEY: SECRETS.find((s) => s.setting === "SECRETS_KEY")!.generate(),
    MAILBOX_LISTEN_KEY: "a".repeat(44),
    MAILBOX_SEND_KEY: "b".repeat(44),
    AZURE_CLIENT_ID: "11111111-2222-4333-8444-555555555555",
    SERVICE_PRINCIPAL_ID: "66666666-7777-4888-8999-aaaaaaaaaaaa",
    REGISTRY_TABLE_ENDPOINT: "https://sttest.table.core.windows.net/",
    SERVICEBUS_CONNECTION__fullyQualifiedNamespace: "sb-test.servicebus.windows.net",
    // The form of an Event Grid topic endpoint (topic.properties.endpoint).
    LIFECYCLE_EVENTS_ENDPOINT: "https://evgt-test.westeurope-1.eventgrid.azure.net/api/events",
  };
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(settings)) {
    if (!SCHEMA_KEYS.includes(k)) continue;
    if (v.startsWith("[") || isKeyVaultReference(v)) {
      const standIn = standIns[k];
      if (standIn === undefined) throw new Error(`${k} is computed at deployment (${v}); give it a stand-in here`);
      out[k] = standIn;
    } else if (v !== "") out[k] = v;
  }
  return out;
}

describe("app settings (orchestrations/settings.ts ↔ main.bicep)", () => {
  it("finds the settings the service cannot run without", () => {
    expect(REQUIRED).toEqual(["DURABLE_TASK_HUB"]);
    expect(NEEDED_AT_RUN_TIME).toEqual(
      expect.arrayContaining(["SERVICE_SIGNING_KEY", "SECRETS_KEY", "MAILBOX_LISTEN_KEY", "MAILBOX_SEND_KEY", "SERVICEBUS_CONNECTION", "ARTIFACT_CATALOG"]),
    );
  });

  for (const s of MAIN_SCENARIOS) {
    it(`${s.name}: every required and run-time-needed setting is provided, secrets as Key Vault references, nothing nobody reads`, (ctx) => {
      needBicep(ctx);
      const snap = mains.get(s)!;
      const settings = appSettingsOf(snap);
      const keys = Object.keys(settings);

      for (const k of REQUIRED) expect(keys, `required setting ${k}`).toContain(k);
      for (const k of NEEDED_AT_RUN_TIME)
        expect(
          keys.filter((x) => (SATISFIED_BY[k] ?? [k]).includes(x)),
          `run-time setting ${k}`,
        ).not.toEqual([]);
      for (const k of keys) expect(SCHEMA_KEYS.includes(k) || k in HOST_SETTINGS, `${k} is read by the service (schema) or the host (allow-list)`).toBe(true);
      for (const k of PLATFORM) expect(keys, `${k} is the platform's`).not.toContain(k);
      for (const [k, why] of Object.entries(NOT_IN_AZURE)) expect(keys, `${k}: ${why}`).not.toContain(k);
      for (const k of FLEX_DEPRECATED) expect(keys, `${k} is deprecated on Flex Consumption`).not.toContain(k);

      // Secrets are never plain settings.
      for (const k of SECRET_SETTINGS) expect(isKeyVaultReference(settings[k]!), `${k} is a Key Vault reference`).toBe(true);
      const vaultSecrets = resourcesOf(snap, "Microsoft.KeyVault/vaults/secrets").map((r) => r.name.split("/").pop());
      for (const spec of SECRETS) expect(settings[spec.setting], `${spec.setting} names the hook's secret`).toContain(`secrets/${spec.name}`);
      // The mailbox keys are written by the template itself (listKeys of the Listen/Send rules).
      expect(vaultSecrets.sort()).toEqual(["mailbox-listen-key", "mailbox-send-key"]);

      // The whole set passes the service's own schema (with computed values and secrets resolved).
      const parsed = SettingsSchema.safeParse(resolvedForParse(settings));
      expect(parsed.success ? [] : parsed.error.issues, "SettingsSchema accepts the template's settings").toEqual([]);

      // Host-read settings: each identity connection is complete, and names a connection something uses.
      for (const prefix of ["AzureWebJobsStorage", "SERVICEBUS_CONNECTION"]) {
        expect(settings[`${prefix}__credential`]).toBe("managedidentity");
        expect(settings[`${prefix}__clientId`]).toBe(settings.AZURE_CLIENT_ID);
      }
      expect(matchesIn(/connection:\s*"([^"]+)"/g)).toContain("SERVICEBUS_CONNECTION");
      const host = JSON.parse(readFileSync(join(ROOT, "host.json"), "utf8")) as {
        extensions: { durableTask: { hubName: string; storageProvider: { connectionStringName: string } } };
      };
      expect(host.extensions.durableTask.hubName).toBe("%DURABLE_TASK_HUB%");
      if (s.durableBackend === "AzureStorage") {
        expect(settings[`${host.extensions.durableTask.storageProvider.connectionStringName}__accountName`]).toBeDefined();
        expect(keys.filter((k) => k.startsWith("AzureFunctionsJobHost__") || k.startsWith("DURABLE_TASK_SCHEDULER"))).toEqual([]);
      } else {
        expect(settings.AzureFunctionsJobHost__extensions__durableTask__storageProvider__type).toBe("azureManaged");
        const connection = settings.AzureFunctionsJobHost__extensions__durableTask__storageProvider__connectionStringName!;
        expect(settings[connection]).toMatch(/Authentication=ManagedIdentity;ClientID=/);
        // The task hub the scheduler hosts is the one host.json names.
        const hubs = resourcesOf(snap, "Microsoft.DurableTask/schedulers/taskHubs").map((r) => r.name.split("/").pop());
        expect(hubs).toEqual([settings.DURABLE_TASK_HUB]);
      }
    });
  }
});

describe("resources", () => {
  it("Flex Consumption: Node 20/22 as package.json allows, always-ready for the durable group and the Service Bus trigger the code registers", (ctx) => {
    needBicep(ctx);
    const snap = mains.get(MAIN_SCENARIOS[0]!)!;
    const [plan] = resourcesOf(snap, "Microsoft.Web/serverfarms");
    expect(plan?.sku).toMatchObject({ name: "FC1", tier: "FlexConsumption" });
    const [site] = resourcesOf(snap, "Microsoft.Web/sites");
    const config = (
      site!.properties as {
        functionAppConfig: {
          runtime: { name: string; version: string };
          scaleAndConcurrency: { alwaysReady: { name: string; instanceCount: number }[] };
          deployment: { storage: { authentication: { type: string } } };
        };
      }
    ).functionAppConfig;
    expect(config.runtime.name).toBe("node");
    const engines = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { engines: { node: string } }).engines.node;
    expect(engines).toMatch(new RegExp(`(>=|\\b)${config.runtime.version}\\b`));
    expect(config.deployment.storage.authentication.type).toBe("UserAssignedIdentity");
    const groups = config.scaleAndConcurrency.alwaysReady.map((g) => g.name);
    expect(groups).toContain("durable");
    const serviceBusTriggers = matchesIn(/\.serviceBusQueue\("([^"]+)"/g);
    for (const g of groups.filter((x) => x.startsWith("function:")))
      expect(serviceBusTriggers, `${g} is a Service Bus trigger the app registers`).toContain(g.slice("function:".length));
    expect(groups.filter((x) => x.startsWith("function:"))).toEqual(serviceBusTriggers.map((n) => `function:${n}`));
  });

  it("the Node worker gets infra/node-worker-arguments.txt's flags on 2 GiB instances, and none on 512 MB ones", (ctx) => {
    needBicep(ctx);
    const flags = readFileSync(join(INFRA, "node-worker-arguments.txt"), "utf8").trim();
    expect(flags).toMatch(/^--[a-z-]+=\d+( --[a-z-]+=\d+)*$/);
    for (const s of MAIN_SCENARIOS) {
      const settings = appSettingsOf(mains.get(s)!);
      if ((s.instanceMemoryMB ?? 2048) >= 2048) expect(settings.languageWorkers__node__arguments, s.name).toBe(flags);
      else expect(settings, s.name).not.toHaveProperty("languageWorkers__node__arguments");
    }
    expect(MAIN_SCENARIOS.map((s) => s.instanceMemoryMB ?? 2048)).toContain(512);
  });

  it("the host refuses request bodies far past the routes' 64 KiB before buffering them: in Azure, under func start and in the host stand-in", (ctx) => {
    const sample = JSON.parse(readFileSync(join(ROOT, "local.settings.sample.json"), "utf8")) as { Values: Record<string, string> };
    expect(sample.Values.FUNCTIONS_REQUEST_BODY_SIZE_LIMIT).toBe(String(DEPLOYED_REQUEST_BODY_SIZE_LIMIT));
    // Headroom: the routes answer 64 KiB..limit with their own problem+json 413; the host's default is 100 MB.
    expect(DEPLOYED_REQUEST_BODY_SIZE_LIMIT).toBeGreaterThan(MAX_BODY_BYTES);
    expect(DEPLOYED_REQUEST_BODY_SIZE_LIMIT).toBeLessThanOrEqual(1024 * 1024);
    needBicep(ctx);
    for (const s of MAIN_SCENARIOS)
      expect(appSettingsOf(mains.get(s)!).FUNCTIONS_REQUEST_BODY_SIZE_LIMIT, s.name).toBe(String(DEPLOYED_REQUEST_BODY_SIZE_LIMIT));
  });

  it("local.settings.sample.json starts the Node worker with the same flags (func start)", () => {
    const sample = JSON.parse(readFileSync(join(ROOT, "local.settings.sample.json"), "utf8")) as { Values: Record<string, string> };
    expect(sample.Values.languageWorkers__node__arguments).toBe(readFileSync(join(INFRA, "node-worker-arguments.txt"), "utf8").trim());
  });

  it("storage without shared keys, Application Insights without local auth, Key Vault with RBAC, Service Bus local auth stated explicitly", (ctx) => {
    needBicep(ctx);
    const snap = mains.get(MAIN_SCENARIOS[0]!)!;
    expect(resourcesOf(snap, "Microsoft.Storage/storageAccounts")[0]!.properties).toMatchObject({
      allowSharedKeyAccess: false,
      allowBlobPublicAccess: false,
      minimumTlsVersion: "TLS1_2",
    });
    expect(resourcesOf(snap, "Microsoft.Insights/components")[0]!.properties).toMatchObject({ DisableLocalAuth: true });
    expect(resourcesOf(snap, "Microsoft.KeyVault/vaults")[0]!.properties).toMatchObject({ enableRbacAuthorization: true });
    // Nodes authenticate with SAS: local auth stays on, and says so in the template rather than by omission.
    expect(resourcesOf(snap, "Microsoft.ServiceBus/namespaces")[0]!.properties).toMatchObject({ disableLocalAuth: false });
    const queues = resourcesOf(snap, "Microsoft.ServiceBus/namespaces/queues")
      .map((q) => q.name.split("/").pop())
      .sort();
    expect(queues).toEqual(["node-results", "rejected-node-results"]);
    const rules = resourcesOf(snap, "Microsoft.ServiceBus/namespaces/AuthorizationRules").map((r) => [
      r.name.split("/").pop(),
      (r.properties as { rights: string[] }).rights,
    ]);
    const settings = appSettingsOf(snap);
    expect(rules.sort()).toEqual(
      [
        [settings.MAILBOX_LISTEN_RULE, ["Listen"]],
        [settings.MAILBOX_SEND_RULE, ["Send"]],
      ].sort(),
    );
  });

  it("the Key Vault's audit logs and the Service Bus namespace's operational logs go to the Log Analytics workspace", (ctx) => {
    needBicep(ctx);
    for (const s of MAIN_SCENARIOS) {
      const snap = mains.get(s)!;
      const [workspace] = resourcesOf(snap, "Microsoft.OperationalInsights/workspaces");
      const [vault] = resourcesOf(snap, "Microsoft.KeyVault/vaults");
      const [namespace] = resourcesOf(snap, "Microsoft.ServiceBus/namespaces");
      const settings = resourcesOf(snap, "Microsoft.Insights/diagnosticSettings");
      const on = (target: { id: string }) => settings.filter((d) => d.id.toLowerCase().startsWith(`${target.id.toLowerCase()}/providers/microsoft.insights/`));
      const logsOf = (target: { id: string }) =>
        on(target).flatMap((d) => (d.properties as { logs: { category?: string; categoryGroup?: string; enabled: boolean }[] }).logs);
      for (const d of settings) expect((d.properties as { workspaceId: string }).workspaceId.toLowerCase(), s.name).toBe(workspace!.id.toLowerCase());
      expect(logsOf(vault!)).toEqual([{ categoryGroup: "audit", enabled: true }]);
      expect(logsOf(namespace!)).toEqual([{ category: "OperationalLogs", enabled: true }]);
    }
  });

  it("pool.bicep subscribes the machineEvents function to Arc machine write/delete successes in EventGridSchema", (ctx) => {
    needBicep(ctx);
    const snap = pools.get(POOL_SCENARIOS[0]!)!;
    const [topic] = resourcesOf(snap, "Microsoft.EventGrid/systemTopics");
    expect(topic!.properties).toMatchObject({ topicType: "Microsoft.Resources.ResourceGroups", source: expect.stringMatching(/\/resourceGroups\/rg-arc$/) });
    const [sub] = resourcesOf(snap, "Microsoft.EventGrid/systemTopics/eventSubscriptions");
    const p = sub!.properties as {
      destination: { endpointType: string; properties: { resourceId: string } };
      eventDeliverySchema: string;
      filter: { includedEventTypes: string[]; subjectBeginsWith: string };
    };
    expect(p.eventDeliverySchema).toBe("EventGridSchema");
    expect(p.destination.endpointType).toBe("AzureFunction");
    const fn = p.destination.properties.resourceId.split("/functions/")[1];
    expect(matchesIn(/\.eventGrid\("([^"]+)"/g), "the destination is the app's Event Grid trigger").toEqual([fn]);
    expect(p.filter.includedEventTypes.sort()).toEqual(["Microsoft.Resources.ResourceDeleteSuccess", "Microsoft.Resources.ResourceWriteSuccess"]);
    expect(p.filter.subjectBeginsWith).toMatch(/\/resourceGroups\/rg-arc\/providers\/Microsoft\.HybridCompute\/machines\/$/);
  });
});
