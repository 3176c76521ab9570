/**
 * The function app under test: every real function module on the host stand-in, registry tables in Azurite under a
 * prefix unique to the test, the Durable simulator behind the real durable client, and helpers that call routes the
 * way a client would (through the host's router, with App Service principal headers for admins).
 */
import { generateKeyPairSync, randomBytes, type KeyObject } from "node:crypto";
import { TableClient } from "@azure/data-tables";
import { inject } from "vitest";
import { exportPublicKey } from "../../contract/keys.js";
import { signNodeRequest } from "../../contract/node-request.js";
import { ADMIN_ROLE, clientPrincipalHeader, READER_ROLE } from "../../functions/http/principal.js";
import type { HttpResult } from "../functions-host/index.js";
import { startDurableHarness, type DurableHarness, type DurableSimulatorOptions } from "../durable/index.js";
import { facts } from "../registry/fixtures.js";
import { uniquePrefix } from "../registry/fixtures.js";
import type { NodeFacts } from "../../orchestrations/clients/registry/model.js";
import { createServiceProvider, type ServiceParts } from "../../functions/composition-root.js";
import { registerApp } from "../../functions/register-app.js";
import type { ServiceProvider } from "../../orchestrations/services.js";

/**
 * The app is registered once, when this module loads, as the worker would (so a test may replace a function by
 * registering its own after this import: the last registration of a name wins). Each startApp/useServices gives it
 * fresh services: the settings of the test (read from the environment at call time) and its emulator clients.
 */
let current: ServiceProvider = createServiceProvider();
registerApp(() => current());

export const admin = { "x-ms-client-principal": clientPrincipalHeader({ name: "alice@contoso.example", roles: [ADMIN_ROLE] }) };
export const reader = { "x-ms-client-principal": clientPrincipalHeader({ name: "rita@contoso.example", roles: [READER_ROLE] }) };

export interface TestNode {
  privateKey: KeyObject;
  publicKey: string;
  facts: NodeFacts;
}

export function newNode(overrides: Partial<NodeFacts> = {}): TestNode {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  return { privateKey, publicKey: exportPublicKey(publicKey), facts: facts(overrides) };
}

/**
 * An enrolment request as the agent sends it: the body signed by the node's own key (proof of possession), or by
 * `signer` to play someone who has only the public facts.
 */
export async function enrolRequest(
  node: Pick<TestNode, "privateKey">,
  body: unknown,
  options: { signer?: KeyObject; now?: Date } = {},
): Promise<{ headers: Record<string, string>; rawBody: string }> {
  const rawBody = JSON.stringify(body);
  const signature = await signNodeRequest(
    { method: "POST", url: "/api/enrol", body: rawBody },
    { privateKey: options.signer ?? node.privateKey, now: options.now ?? new Date() },
  );
  return { headers: { "content-type": "application/json", ...signature }, rawBody };
}

export interface TestApp extends DurableHarness {
  prefix: string;
  call(method: string, path: string, options?: { headers?: Record<string, string>; body?: unknown; rawBody?: string | Uint8Array }): Promise<HttpResult>;
  createPool(name: string, spec?: Record<string, unknown>): Promise<HttpResult>;
  createToken(pool: string, body?: Record<string, unknown>): Promise<string>;
  enrol(node: Pick<TestNode, "privateKey" | "publicKey" | "facts">, token: string): Promise<HttpResult>;
  /** Points the app's clients at a test's emulators (ARM, Service Bus, a credential) from now on. */
  useServices(parts: ServiceParts): void;
  /** Every row of every registry table, for "nothing changed" assertions. */
  snapshot(): Promise<string>;
}

export const CLUSTER_ID =
  "/subscriptions/00000000-0000-4000-8000-000000000001/resourceGroups/rg-aks/providers/Microsoft.ContainerService/managedClusters/aks-1";
export const ARC_RG = "/subscriptions/00000000-0000-4000-8000-000000000001/resourceGroups/rg-arc";

/** Keys made per test run: nothing secret is committed. */
export const serviceSigningKey = generateKeyPairSync("ed25519").privateKey;
export const mailboxRules = {
  listen: { name: "flexnode-node-listen", key: randomBytes(32).toString("base64") },
  send: { name: "flexnode-node-send", key: randomBytes(32).toString("base64") },
};

export interface StartAppOptions {
  /** A Service Bus connection string with a Manage rule (the emulator's); default: a namespace nobody listens on. */
  serviceBus?: { connectionString: string; nodeNamespace?: string };
  /** Default: the test run's Azurite (vitest `inject`); plain processes (benchmarks) pass their own. */
  azuriteConnectionString?: string;
  simulator?: DurableSimulatorOptions;
  /** Extra app settings (SAGA_TIMING, ARTIFACT_CATALOG, ...). */
  settings?: Record<string, string>;
}

export async function startApp(options: StartAppOptions = {}): Promise<TestApp> {
  const prefix = uniquePrefix();
  const azurite = options.azuriteConnectionString ?? inject("azuriteConnectionString");
  Object.assign(process.env, {
    DURABLE_TASK_HUB: "FlexNodeTest",
    REGISTRY_CONNECTION: azurite,
    REGISTRY_TABLE_PREFIX: prefix,
    WEBSITE_AUTH_ENABLED: "True",
    PUBLIC_BASE_URL: "https://flexnode.example",
    SERVICEBUS_CONNECTION:
      options.serviceBus?.connectionString ??
      "Endpoint=sb://sb.invalid;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true",
    MAILBOX_LISTEN_RULE: mailboxRules.listen.name,
    MAILBOX_LISTEN_KEY: mailboxRules.listen.key,
    MAILBOX_SEND_RULE: mailboxRules.send.name,
    MAILBOX_SEND_KEY: mailboxRules.send.key,
    SERVICE_SIGNING_KEY: serviceSigningKey.export({ format: "pem", type: "pkcs8" }).toString(),
    ...options.settings,
  });
  if (options.serviceBus?.nodeNamespace) process.env.SERVICEBUS_NODE_NAMESPACE = options.serviceBus.nodeNamespace;
  else delete process.env.SERVICEBUS_NODE_NAMESPACE;
  current = createServiceProvider();
  const harness = await startDurableHarness(options.simulator ?? {});
  const call: TestApp["call"] = (method, path, options = {}) => {
    const headers = { ...options.headers };
    let body: string | Uint8Array | undefined = options.rawBody;
    if (options.body !== undefined) {
      body = JSON.stringify(options.body);
      headers["content-type"] ??= "application/json";
    }
    return harness.host.handleHttp({ method, url: path, headers, body });
  };
  return {
    ...harness,
    prefix,
    call,
    createPool: (name, spec = {}) =>
      call("POST", "/api/manage/pools", {
        headers: admin,
        body: { name, clusterResourceId: CLUSTER_ID, arc: { resourceGroupId: ARC_RG, location: "eastus" }, ...spec },
      }),
    createToken: async (pool, body = {}) => {
      const res = await call("POST", `/api/manage/pools/${pool}/tokens`, { headers: admin, body });
      if (res.status !== 201) throw new Error(`token create failed: ${res.status} ${res.body}`);
      return (res.json as { token: string }).token;
    },
    useServices: (parts) => {
      current = createServiceProvider({ parts });
    },
    enrol: async (node, token) => call("POST", "/api/enrol", await enrolRequest(node, { token, facts: node.facts, publicKey: node.publicKey })),
    snapshot: async () => {
      const rows: string[] = [];
      for (const table of ["pools", "tokens", "nodes", "index", "audit", "nonces", "claims"]) {
        const client = TableClient.fromConnectionString(azurite, `${prefix}${table}`, { allowInsecureConnection: true });
        try {
          for await (const e of client.listEntities()) rows.push(`${table}:${JSON.stringify(e)}`);
        } catch (error) {
          if ((error as { statusCode?: number }).statusCode !== 404) throw error;
        }
      }
      return rows.sort().join("\n");
    },
  };
}
