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
import { poolDeploymentArgs } from "../../infra/hooks/pools.js";
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
      services: Record<string, { project: string; language: string; host: string }>;
      hooks: Record<string, Record<"posix" | "windows", { run: string }>>;
    };
    expect(azd.services).toEqual({ api: { project: ".", language: "ts", host: "function" } });
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
    // The function app carries azd's service tag, so `azd deploy` finds it.
    expect(readFileSync(join(INFRA, "modules/function-app.bicep"), "utf8")).toContain("'azd-service-name': 'api'");
  });
});

describe("postdeploy hook: pools", () => {
  it("deploys pool.bicep into the pool's Arc resource group with exactly the template's parameters", () => {
    const args = poolDeploymentArgs(
      {
        arcResourceGroupId: "/subscriptions/00000000-0000-4000-8000-000000000001/resourceGroups/rg-arc",
        clusterResourceId: "/subscriptions/x/resourceGroups/rg-aks/providers/Microsoft.ContainerService/managedClusters/aks-1",
        clusterAccess: "EntraOnly",
        roleGrants: [{ roleDefinitionId: "acdd72a7-3385-48ef-bd42-f606fba81ae7", scope: "arcResourceGroup" }],
      },
      { servicePrincipalId: "sp", functionAppResourceId: "app" },
    );
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
});
