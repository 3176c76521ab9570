/**
 * azd postprovision hook: makes, once, the two secrets Bicep cannot generate and stores them in the service's Key
 * Vault, where the function app's settings reference them:
 *   service-signing-key  Ed25519 private key, PKCS#8 PEM (SERVICE_SIGNING_KEY: signs step envelopes)
 *   secrets-key          32 random bytes, base64 (SECRETS_KEY: seals one-time secrets for nodes)
 * A secret that exists is never replaced (rotating either one is a deliberate act: nodes pin the signing key at
 * enrolment); one that exists with a malformed value stops the hook. Runs as the deploying user (azd's or the Azure
 * CLI's sign-in), who holds Key Vault Secrets Officer on the vault (main.bicep principalId). Idempotent.
 *
 *   npx tsx infra/hooks/ensure-secrets.ts          (azd sets AZURE_KEY_VAULT_ENDPOINT from main.bicep's outputs)
 */
import { createPrivateKey, generateKeyPairSync, randomBytes } from "node:crypto";
import { pathToFileURL } from "node:url";
import type { TokenCredential } from "@azure/core-auth";

export const KEY_VAULT_API_VERSION = "7.5";

export interface SecretSpec {
  name: string;
  /** The setting that references it (for messages). */
  setting: string;
  generate: () => string;
  /** Why an existing value is unusable, or undefined when it is fine. */
  problem: (value: string) => string | undefined;
}

export const SECRETS: readonly SecretSpec[] = [
  {
    name: "service-signing-key",
    setting: "SERVICE_SIGNING_KEY",
    generate: () => generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    problem: (value) => {
      try {
        const key = createPrivateKey(value);
        return key.asymmetricKeyType === "ed25519" && value.includes("BEGIN PRIVATE KEY")
          ? undefined
          : `is a ${key.asymmetricKeyType ?? "?"} key, not an Ed25519 PKCS#8 PEM key`;
      } catch {
        return "is not a PEM private key";
      }
    },
  },
  {
    name: "secrets-key",
    setting: "SECRETS_KEY",
    generate: () => randomBytes(32).toString("base64"),
    problem: (value) => (/^[A-Za-z0-9+/]+={0,2}$/.test(value) && Buffer.from(value, "base64").length === 32 ? undefined : "is not 32 bytes of base64"),
  },
];

export interface EnsureSecretsOptions {
  /** https://<vault>.vault.azure.net/ */
  vaultUrl: string;
  credential: TokenCredential;
  fetch?: typeof fetch;
  log?: (line: string) => void;
  /** Waits between attempts while a fresh role assignment propagates (403), in ms; the last is the final try. */
  retryDelaysMs?: number[];
  sleep?: (ms: number) => Promise<void>;
}

export interface EnsureSecretsResult {
  created: string[];
  kept: string[];
}

export async function ensureSecrets(options: EnsureSecretsOptions): Promise<EnsureSecretsResult> {
  const doFetch = options.fetch ?? fetch;
  const log = options.log ?? ((line: string) => console.warn(line));
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  // A role assignment made by the same provision can take a few minutes to reach Key Vault.
  const delays = options.retryDelaysMs ?? [5_000, 10_000, 20_000, 30_000, 60_000, 60_000];
  const base = new URL(options.vaultUrl);
  if (base.protocol !== "https:") throw new Error(`Key Vault URL must be https: ${options.vaultUrl}`);

  const call = async (method: "GET" | "PUT", name: string, body?: unknown): Promise<Response> => {
    const url = new URL(`secrets/${name}?api-version=${KEY_VAULT_API_VERSION}`, base);
    for (let attempt = 0; ; attempt++) {
      const token = await options.credential.getToken("https://vault.azure.net/.default");
      if (!token) throw new Error("no token for Key Vault (sign in with `azd auth login` or `az login`)");
      const res = await doFetch(url, {
        method,
        headers: { authorization: `Bearer ${token.token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      if (res.status !== 403 || attempt >= delays.length) return res;
      log(`Key Vault answered 403 for ${name}; waiting ${delays[attempt]! / 1000} s for the role assignment to propagate`);
      await sleep(delays[attempt]!);
    }
  };

  const result: EnsureSecretsResult = { created: [], kept: [] };
  for (const spec of SECRETS) {
    const existing = await call("GET", spec.name);
    if (existing.status === 200) {
      const { value } = (await existing.json()) as { value?: string };
      const problem = value === undefined ? "has no value" : spec.problem(value);
      if (problem) throw new Error(`Key Vault secret ${spec.name} (${spec.setting}) ${problem}; fix or delete it, then run the hook again`);
      log(`${spec.name}: exists, kept`);
      result.kept.push(spec.name);
      continue;
    }
    if (existing.status !== 404) throw new Error(`reading ${spec.name}: Key Vault answered ${existing.status} ${await existing.text()}`);
    const put = await call("PUT", spec.name, { value: spec.generate(), contentType: `${spec.setting} (flexnode-onboarding)` });
    if (put.status !== 200) throw new Error(`writing ${spec.name}: Key Vault answered ${put.status} ${await put.text()}`);
    log(`${spec.name}: created`);
    result.created.push(spec.name);
  }
  return result;
}

async function main(): Promise<void> {
  const vaultUrl = process.env.AZURE_KEY_VAULT_ENDPOINT;
  if (!vaultUrl) throw new Error("AZURE_KEY_VAULT_ENDPOINT is not set (run through azd, or export it from `azd env get-values`)");
  const { AzureCliCredential, AzureDeveloperCliCredential, ChainedTokenCredential } = await import("@azure/identity");
  const result = await ensureSecrets({ vaultUrl, credential: new ChainedTokenCredential(new AzureDeveloperCliCredential(), new AzureCliCredential()) });
  console.warn(
    `ensure-secrets: created ${result.created.length}, kept ${result.kept.length}. A running app re-reads Key Vault references within 24 hours; restart it to pick up new secrets at once.`,
  );
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    console.error(`ensure-secrets: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  });
}
