/**
 * The function app for benchmarks: every real function module on the Functions host stand-in, registry tables in
 * Azurite, the Durable simulator behind the real durable client. It mirrors `test/enrolment/app.ts` startApp, which
 * reads Azurite's address through vitest's `inject` and so cannot run in a plain process.
 *
 * The functions core stand-in must be installed before any function module loads, so everything that imports the
 * app's modules is loaded here dynamically, after `installFunctionsCore()`.
 */
import { randomBytes } from "node:crypto";
import { installFunctionsCore } from "../../test/functions-host/core.js";
import type { HttpResult } from "../../test/functions-host/host.js";
import type { DurableHarness } from "../../test/durable/harness.js";
import type { DurableSimulatorOptions } from "../../test/durable/simulator.js";

export interface ServiceApp extends DurableHarness {
  prefix: string;
  /** Admin headers (App Service principal with the admin role). */
  adminHeaders: Record<string, string>;
  call(method: string, path: string, options?: { headers?: Record<string, string>; body?: unknown }): Promise<HttpResult>;
  createPool(name: string, spec: Record<string, unknown>): Promise<void>;
  createToken(pool: string, body?: Record<string, unknown>): Promise<string>;
}

export interface ServiceAppOptions {
  azuriteConnectionString: string;
  /** Service Bus connection string with a Manage rule; default: a namespace nobody listens on (in-process mailbox). */
  serviceBus?: { connectionString: string; nodeNamespace?: string };
  simulator?: DurableSimulatorOptions;
  /** Extra app settings (SAGA_TIMING, ARTIFACT_CATALOG, ...). */
  settings?: Record<string, string>;
}

export async function startServiceApp(options: ServiceAppOptions): Promise<ServiceApp> {
  installFunctionsCore();
  const { mailboxRules, serviceSigningKey, admin } = await import("../../test/enrolment/app.js");
  const { startDurableHarness } = await import("../../test/durable/harness.js");
  const prefix = `b${randomBytes(5).toString("hex")}`;
  Object.assign(process.env, {
    DURABLE_TASK_HUB: "FlexNodeBench",
    REGISTRY_CONNECTION: options.azuriteConnectionString,
    REGISTRY_TABLE_PREFIX: prefix,
    WEBSITE_AUTH_ENABLED: "True",
    PUBLIC_BASE_URL: "https://flexnode.example",
    SERVICEBUS_CONNECTION: options.serviceBus?.connectionString ?? "Endpoint=sb://sb.invalid;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true",
    MAILBOX_LISTEN_RULE: mailboxRules.listen.name,
    MAILBOX_LISTEN_KEY: mailboxRules.listen.key,
    MAILBOX_SEND_RULE: mailboxRules.send.name,
    MAILBOX_SEND_KEY: mailboxRules.send.key,
    SERVICE_SIGNING_KEY: serviceSigningKey.export({ format: "pem", type: "pkcs8" }).toString(),
    ...options.settings,
  });
  if (options.serviceBus?.nodeNamespace) process.env.SERVICEBUS_NODE_NAMESPACE = options.serviceBus.nodeNamespace;
  else delete process.env.SERVICEBUS_NODE_NAMESPACE;

  const harness = await startDurableHarness(options.simulator ?? {});
  const call: ServiceApp["call"] = (method, path, o = {}) => {
    const headers = { ...o.headers };
    let body: string | undefined;
    if (o.body !== undefined) {
      body = JSON.stringify(o.body);
      headers["content-type"] ??= "application/json";
    }
    return harness.host.handleHttp({ method, url: path, headers, body });
  };
  return {
    ...harness,
    prefix,
    adminHeaders: admin,
    call,
    createPool: async (name, spec) => {
      const res = await call("POST", "/api/manage/pools", { headers: admin, body: { name, ...spec } });
      if (res.status !== 201) throw new Error(`pool create failed: ${res.status} ${res.body}`);
    },
    createToken: async (pool, body = {}) => {
      const res = await call("POST", `/api/manage/pools/${pool}/tokens`, { headers: admin, body });
      if (res.status !== 201) throw new Error(`token create failed: ${res.status} ${res.body}`);
      return (res.json as { token: string }).token;
    },
  };
}
