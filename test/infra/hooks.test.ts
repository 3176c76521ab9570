/**
 * The azd hooks' logic, against an in-process Key Vault secrets endpoint (GET/PUT secrets, 404 when absent, 403 while
 * a role assignment propagates): the postprovision hook creates the two generated secrets once, in the forms the
 * service's settings schema accepts, never replaces one, refuses a malformed one, and waits out a 403; the postdeploy
 * hook deploys pool.bicep with the parameters the template declares.
 */
import { createPrivateKey } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { AccessToken, TokenCredential } from "@azure/core-auth";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { ensureSecrets, KEY_VAULT_API_VERSION, SECRETS } from "../../infra/hooks/ensure-secrets.js";
import { poolDeploymentArgs, poolParameters, withSharedRoleGrants } from "../../infra/hooks/pools.js";
import { SettingsSchema } from "../../orchestrations/settings.js";
import { INFRA, ROOT } from "./bicep.js";

const VAULT = "https://kv-test.vault.azure.net/";
const credential: TokenCredential = { getToken: async (): Promise<AccessToken> => ({ token: "t", expiresOnTimestamp: Date.now() + 3_600_000 }) };

function fakeVault(options: { forbiddenFirst?: number } = {}) {
  const secrets = new Map<string, string>();
  const calls: string[] = [];
  let forbidden = options.forbiddenFirst ?? 0;
  const fetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const url = new URL(String(input));
    const name = /^\/secrets\/([a-z0-9-]+)$/.exec(url.pathname)?.[1];
    calls.push(`${init?.method ?? "GET"} ${url.pathname}`);
    expect(url.searchParams.get("api-version")).toBe(KEY_VAULT_API_VERSION);
    expect(new Headers(init?.headers).get("authorization")).toBe("Bearer t");
    if (!name) return new Response("{}", { status: 400 });
    if (forbidden > 0) {
      forbidden--;
      return new Response(JSON.stringify({ error: { code: "Forbidden" } }), { status: 403 });
    }
    if ((init?.method ?? "GET") === "GET") {
      const value = secrets.get(name);
      return value === undefined
        ? new Response(JSON.stringify({ error: { code: "SecretNotFound" } }), { status: 404 })
        : new Response(JSON.stringify({ value, id: `${VAULT}secrets/${name}/v1` }), { status: 200 });
    }
    const body = JSON.parse(String(init?.body)) as { value: string };
    secrets.set(name, body.value);
    return new Response(JSON.stringify({ value: body.value, id: `${VAULT}secrets/${name}/v1` }), { status: 200 });
  };
  return { secrets, calls, fetch: fetch as typeof globalThis.fetch };
}

const quiet = { log: () => undefined, sleep: async () => undefined };

describe("postprovision hook: ensure-secrets", () => {
  it("creates both secrets once, in forms the service's settings accept, and keeps them on later runs", async () => {
    const kv = fakeVault();
    expect(await ensureSecrets({ vaultUrl: VAULT, credential, fetch: kv.fetch, ...quiet })).toEqual({
      created: ["service-signing-key", "secrets-key"],
      kept: [],
    });
    const signing = kv.secrets.get("service-signing-key")!;
    expect(createPrivateKey(signing).asymmetricKeyType).toBe("ed25519");
    const parsed = SettingsSchema.safeParse({
      DURABLE_TASK_HUB: "FlexNodeTest",
      REGISTRY_TABLE_ENDPOINT: "https://st.table.core.windows.net/",
      SERVICE_SIGNING_KEY: signing,
      SECRETS_KEY: kv.secrets.get("secrets-key"),
    });
    expect(parsed.success ? [] : parsed.error.issues).toEqual([]);

    const before = new Map(kv.secrets);
    kv.calls.length = 0;
    expect(await ensureSecrets({ vaultUrl: VAULT, credential, fetch: kv.fetch, ...quiet })).toEqual({
      created: [],
      kept: ["service-signing-key", "secrets-key"],
    });
    expect(kv.calls.every((c) => c.startsWith("GET "))).toBe(true);
    expect(kv.secrets).toEqual(before);
  });

  it("refuses to overwrite a malformed secret", async () => {
    const kv = fakeVault();
    kv.secrets.set("secrets-key", "too-short");
    await expect(ensureSecrets({ vaultUrl: VAULT, credential, fetch: kv.fetch, ...quiet })).rejects.toThrow(
      /secrets-key \(SECRETS_KEY\) is not 32 bytes of base64/,
    );
    expect(kv.secrets.get("secrets-key")).toBe("too-short");
  });

  it("waits while the deployer's fresh role assignment propagates (403), then succeeds; gives up after the last wait", async () => {
    const kv = fakeVault({ forbiddenFirst: 2 });
    const waits: number[] = [];
    const result = await ensureSecrets({
      vaultUrl: VAULT,
      credential,
      fetch: kv.fetch,
      log: () => undefined,
      sleep: async (ms) => void waits.push(ms),
      retryDelaysMs: [1, 2, 3],
    });
    expect(result.created).toHaveLength(2);
    expect(waits).toEqual([1, 2]);
    const stuck = fakeVault({ forbiddenFirst: 100 });
    await expect(ensureSecrets({ vaultUrl: VAULT, credential, fetch: stuck.fetch, ...quiet, retryDelaysMs: [1] })).rejects.toThrow(
      /reading service-signing-key: Key Vault answered 403/,
    );
  });

  it("names the secrets the function app's Key Vault references name", () => {
    const functionApp = readFileSync(join(INFRA, "modules/function-app.bicep"), "utf8");
    for (const s of SECRETS) expect(functionApp).toContain(`${s.setting}: kvRef('\${keyVaultUri}secrets/${s.name}')`);
  });
});

describe("azure.yaml", () => {
  it("names the service api (function, ts), infra/main, and hooks that exist; main.parameters.json fills only main.bicep parameters", () => {
    const azd = parse(readFileSync(join(ROOT, "azure.yaml"), "utf8")) as {
      infra: { provider: string; path: string; module: string };
      services: Record<string, { project: string; language: string; host: string; remoteBuild?: boolean }>;
      hooks: Record<string, Record<"posix" | "windows", { run: string }>>;
    };
    // remoteBuild false: the package is the local build .funcignore describes (compiled output and node_modules, no *.ts).
    expect(azd.services).toEqual({ api: { project: ".", language: "ts", host: "function", remoteBuild: false } });
    const funcignore = readFileSync(join(ROOT, ".funcignore"), "utf8").split("\n");
    expect(funcignore).toEqual(expect.arrayContaining(["*.ts", "!dist/**"]));
    expect(funcignore, "node_modules ship with a local build").not.toContain("node_modules");
    expect(azd.infra).toEqual({ provider: "bicep", path: "infra", module: "main" });
    expect(Object.keys(azd.hooks).sort()).toEqual(["postdeploy", "postprovision"]);
    for (const hook of Object.values(azd.hooks)) {
      for (const shell of ["posix", "windows"] as const) {
        const script = /npx tsx (\S+\.ts)/.exec(hook[shell].run)?.[1];
        expect(script && existsSync(join(ROOT, script)), `${hook[shell].run} runs a script in the repository`).toBe(true);
      }
    }
    const params = (JSON.parse(readFileSync(join(INFRA, "main.parameters.json"), "utf8")) as { parameters: Record<string, unknown> }).parameters;
    const declared = (JSON.parse(readFileSync(join(INFRA, "main.json"), "utf8")) as { parameters: Record<string, unknown> }).parameters;
    for (const name of Object.keys(params)) expect(Object.keys(declared), `main.parameters.json: ${name}`).toContain(name);
    // A parameter main.bicep passes down allows no value a module refuses (that would fail the deployment halfway).
    const bounds = (template: unknown, found: { minValue?: number; maxValue?: number }[] = []) => {
      if (template && typeof template === "object") {
        const t = template as { parameters?: Record<string, { minValue?: number; maxValue?: number }> };
        if (t.parameters?.durableHistoryRetentionDays && "minValue" in t.parameters.durableHistoryRetentionDays)
          found.push(t.parameters.durableHistoryRetentionDays);
        for (const v of Object.values(template)) bounds(v, found);
      }
      return found;
    };
    const [top, ...nested] = bounds(JSON.parse(readFileSync(join(INFRA, "main.json"), "utf8")));
    expect(nested.length, "modules declaring durableHistoryRetentionDays").toBeGreaterThan(0);
    for (const b of nested) {
      expect(top!.minValue!).toBeGreaterThanOrEqual(b.minValue ?? -Infinity);
      expect(top!.maxValue!).toBeLessThanOrEqual(b.maxValue ?? Infinity);
    }
    // The function app carries azd's service tag, so `azd deploy` finds it.
    expect(readFileSync(join(INFRA, "modules/function-app.bicep"), "utf8")).toContain("'azd-service-name': 'api'");
  });
});

describe("postdeploy hook: pools", () => {
  it("deploys pool.bicep into the pool's Arc resource group with exactly the template's parameters", () => {
    const pool = {
      arcResourceGroupId: "/subscriptions/00000000-0000-4000-8000-000000000001/resourceGroups/rg-arc",
      clusterResourceId: "/subscriptions/x/resourceGroups/rg-aks/providers/Microsoft.ContainerService/managedClusters/aks-1",
      clusterAccess: "EntraOnly" as const,
      roleGrants: [{ roleDefinitionId: "acdd72a7-3385-48ef-bd42-f606fba81ae7", scope: "arcResourceGroup" as const }],
    };
    const service = { servicePrincipalId: "sp", functionAppResourceId: "app" };
    const args = poolDeploymentArgs(pool, service);
    expect(args.slice(0, 9)).toEqual([
      "deployment",
      "group",
      "create",
      "--subscription",
      "00000000-0000-4000-8000-000000000001",
      "--resource-group",
      "rg-arc",
      "--name",
      "flexnode-pool-rg-arc",
    ]);
    const parameters = JSON.parse(args.at(-1)!) as Record<string, { value: unknown }>;
    expect(parameters).toEqual(poolParameters(pool, service));
    const template = JSON.parse(readFileSync(join(INFRA, "pool.json"), "utf8")) as { parameters: Record<string, { defaultValue?: unknown }> };
    expect(Object.keys(parameters).sort()).toEqual(
      Object.keys(template.parameters)
        .filter((k) => k !== "subscribeMachineEvents")
        .sort(),
    );
    expect(parameters.clusterAccess).toEqual({ value: "EntraOnly" });
    expect(() =>
      poolDeploymentArgs({ arcResourceGroupId: "rg-arc", clusterResourceId: "x" }, { servicePrincipalId: "sp", functionAppResourceId: "app" }),
    ).toThrow(/arcResourceGroupId/);
  });

  it("the hook passes the parameters as a file (@file), never as JSON on a command line Windows cmd would unquote", () => {
    const source = readFileSync(join(INFRA, "hooks/pools.ts"), "utf8");
    expect(source).toMatch(/poolDeploymentArgs\(pool, service, \{ parametersFile \}\)/);
    const args = poolDeploymentArgs(
      { arcResourceGroupId: "/subscriptions/s/resourceGroups/rg-arc", clusterResourceId: "c" },
      { servicePrincipalId: "sp", functionAppResourceId: "app" },
      { parametersFile: "/tmp/p.json" },
    );
    expect(args.slice(-2)).toEqual(["--parameters", "@/tmp/p.json"]);
    expect(args.join(" ")).not.toContain("{");
  });

  it("deploys every pool with the union of the roleGrants of the pools sharing each of its scopes (one ABAC condition per scope)", () => {
    const AKS_USER = "4abbcc35-e782-43d8-92c5-2d3f1bd2253f";
    const READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7";
    const RBAC_READER = "7f6c6a51-bcf8-42ba-9220-52d62157d7db";
    const cluster = "/subscriptions/s/resourceGroups/rg-aks/providers/Microsoft.ContainerService/managedClusters/aks-1";
    const merged = withSharedRoleGrants([
      {
        arcResourceGroupId: "/subscriptions/s/resourceGroups/rg-a",
        clusterResourceId: cluster,
        roleGrants: [{ roleDefinitionId: AKS_USER, scope: "cluster" }],
      },
      {
        arcResourceGroupId: "/subscriptions/s/resourceGroups/RG-A",
        clusterResourceId: "/subscriptions/s/resourceGroups/rg-aks/providers/Microsoft.ContainerService/managedClusters/aks-2",
        roleGrants: [{ roleDefinitionId: READER, scope: "arcResourceGroup" }],
      },
      {
        arcResourceGroupId: "/subscriptions/s/resourceGroups/rg-b",
        clusterResourceId: cluster.toUpperCase(),
        roleGrants: [{ roleDefinitionId: RBAC_READER, scope: "cluster" }],
      },
    ]);
    // rg-a's two pools share the Arc grant; aks-1's two pools (case differs) share both cluster grants; aks-2 only its own (none).
    expect(merged.map((p) => p.roleGrants)).toEqual([
      [
        { roleDefinitionId: AKS_USER, scope: "cluster" },
        { roleDefinitionId: RBAC_READER, scope: "cluster" },
        { roleDefinitionId: READER, scope: "arcResourceGroup" },
      ],
      [{ roleDefinitionId: READER, scope: "arcResourceGroup" }],
      [
        { roleDefinitionId: AKS_USER, scope: "cluster" },
        { roleDefinitionId: RBAC_READER, scope: "cluster" },
      ],
    ]);
    const source = readFileSync(join(INFRA, "hooks/pools.ts"), "utf8");
    expect(source, "the hook deploys the merged pools").toMatch(/withSharedRoleGrants\(JSON\.parse/);
  });
});
