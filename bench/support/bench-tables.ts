/**
 * Where a benchmark's registry tables live: Azurite as a child process over loopback HTTP (the default: the registry
 * exactly as the tests run it), or the in-memory Table service in this process (`test/tables-in-memory/`: the same
 * answers as Azurite, held to them by its differential test, without HTTP and Azurite's own cost) for fleet rows of
 * thousands of nodes. Either way `requests()` counts what the registry sent.
 */
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
  stop(): Promise<void>;
}

export async function startBenchTables(kind: TablesKind): Promise<BenchTables> {
  if (kind === "memory") {
    const tables = inMemoryTables();
    return { kind, connectionString: tables.connectionString, httpClient: tables.httpClient, requests: tables.requests, stop: () => Promise.resolve() };
  }
  const azurite = await startAzurite();
  const census = new HttpCensus();
  return {
    kind,
    connectionString: azurite.connectionString,
    requests: () => census.count(`127.0.0.1:${azurite.ports.table}`),
    stop: async () => {
      census.close();
      await azurite.stop();
    },
  };
}
