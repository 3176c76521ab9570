/**
 * The function app for benchmarks: `test/function-app/app.ts` startApp (every real function module on the Functions host
 * stand-in, registry tables in Azurite, the Durable simulator behind the real durable client), given the benchmark's
 * own Azurite, since vitest's `inject` does not exist in a plain process.
 *
 * The functions core stand-in must be installed before any function module loads, so the app is imported
 * dynamically, after `installFunctionsCore()`.
 */
import { installFunctionsCore } from "../../test/functions-host/index.js";
import type { TestApp } from "../../test/function-app/index.js";
import type { DurableSimulatorOptions } from "../../test/durable/index.js";

export interface ServiceApp extends Omit<TestApp, "createPool"> {
  /** Admin headers (App Service principal with the admin role). */
  adminHeaders: Record<string, string>;
  /** Creates the pool, or throws with the answer. */
  createPool(name: string, spec: Record<string, unknown>): Promise<void>;
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
  const { admin, startApp } = await import("../../test/function-app/index.js");
  const app = await startApp({ ...options, settings: { DURABLE_TASK_HUB: "FlexNodeBench", ...options.settings } });
  return {
    ...app,
    adminHeaders: admin,
    createPool: async (name, spec) => {
      const res = await app.call("POST", "/api/manage/pools", { headers: admin, body: { name, ...spec } });
      if (res.status !== 201) throw new Error(`pool create failed: ${res.status} ${res.body}`);
    },
  };
}
