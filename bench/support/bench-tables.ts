/**
 * Where a benchmark's registry tables live: Azurite as a child process over loopback HTTP (the default: the registry
 * exactly as the tests run it), or the in-memory Table service in this process (`test/tables-in-memory/`: the same
 * answers as Azurite, held to them by its differential test, without HTTP and Azurite's own cost) for fleet rows of
 * thousands of nodes. Either way `requests()` counts what the registry sent, and `requestsIn()` what of it was sent in
 * `registryScope` (a caller runs work in it to have its registry requests told apart, e.g. serving enrolments).
 */
import { AsyncLocalStorage } from "node:async_hooks";
import type { HttpClient } from "@azure/core-rest-pipeline";
import { startAzurite } from "../../test/azurite/index.js";
import { inMemoryTables } from "../../test/tables-in-memory/index.js";
import { HttpCensus } from "./http-census.js";

export type TablesKind = "azurite" | "memory";

export interface BenchTables {
  kind: TablesKind;
  connectionString: string;
  /** The registry's transport when the tables are in process. */
  httpClient?: HttpClient;
  /** Registry requests answered so far. */
  requests(): number;
  /** Of those, the ones sent from work run in `registryScope`. */
  requestsIn(): number;
  stop(): Promise<void>;
}

/** Work run in this scope has its registry requests counted apart (`requestsIn`); it follows the work's awaits. */
export const registryScope = new AsyncLocalStorage<true>();

export async function startBenchTables(kind: TablesKind): Promise<BenchTables> {
  if (kind === "memory") {
    const tables = inMemoryTables();
    let scoped = 0;
    const httpClient: HttpClient = {
      sendRequest: (request) => {
        if (registryScope.getStore()) scoped++;
        return tables.httpClient.sendRequest(request);
      },
    };
    return { kind, connectionString: tables.connectionString, httpClient, requests: tables.requests, requestsIn: () => scoped, stop: () => Promise.resolve() };
  }
  const azurite = await startAzurite();
  const census = new HttpCensus({ scope: registryScope });
  return {
    kind,
    connectionString: azurite.connectionString,
    requests: () => census.count(`127.0.0.1:${azurite.ports.table}`),
    requestsIn: () => census.countInScope(`127.0.0.1:${azurite.ports.table}`),
    stop: async () => {
      census.close();
      await azurite.stop();
    },
  };
}
