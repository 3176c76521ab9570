/**
 * The service's long-lived dependencies, built once per process from the app settings and shared by every trigger
 * (clients are expensive to build and hold connection pools). Rebuilt only if the settings they depend on change,
 * which in practice happens only in tests.
 */
import { DefaultAzureCredential } from "@azure/identity";
import { Registry } from "../orchestrations/registry/registry.js";
import { settings, type Settings } from "../orchestrations/settings.js";

export interface Services {
  settings: Settings;
  registry: Registry;
  now: () => Date;
}

let cached: { key: string; services: Services; ready: Promise<void> } | undefined;

export async function services(): Promise<Services> {
  const s = settings();
  const key = JSON.stringify([s.REGISTRY_CONNECTION, s.REGISTRY_TABLE_ENDPOINT, s.REGISTRY_TABLE_PREFIX, s.AZURE_CLIENT_ID]);
  if (!cached || cached.key !== key) {
    const registry = new Registry(
      s.REGISTRY_CONNECTION
        ? { connectionString: s.REGISTRY_CONNECTION, prefix: s.REGISTRY_TABLE_PREFIX }
        : { endpoint: s.REGISTRY_TABLE_ENDPOINT, credential: new DefaultAzureCredential({ managedIdentityClientId: s.AZURE_CLIENT_ID }), prefix: s.REGISTRY_TABLE_PREFIX },
    );
    cached = { key, services: { settings: s, registry, now: () => new Date() }, ready: registry.ensureTables() };
  }
  const current = cached;
  try {
    await current.ready;
  } catch (error) {
    // A failed table check must not poison the process: the next call tries again.
    if (cached === current) cached = undefined;
    throw error;
  }
  return { ...current.services, settings: s };
}
