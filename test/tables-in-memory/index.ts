/**
 * Public surface of the in-memory Table service: the registry's tables in this process, for benchmarks whose wall
 * time the HTTP hop to Azurite would dominate (the fleet bench's `--tables memory`). `differential.test.ts` holds it
 * to Azurite's answers.
 */
import { TableStore } from "./store.js";
import { tableTransport } from "./transport.js";
import { DEV_ACCOUNT, DEV_KEY } from "../azurite/index.js";
import type { HttpClient } from "@azure/core-rest-pipeline";

export interface InMemoryTables {
  /** The development account's connection string; its host is never dialled. */
  connectionString: string;
  /** The transport to give every TableClient / TableServiceClient (`{ httpClient }`). */
  httpClient: HttpClient;
  /** Requests answered so far. */
  requests(): number;
}

export function inMemoryTables(): InMemoryTables {
  const transport = tableTransport(new TableStore(), { account: DEV_ACCOUNT, key: DEV_KEY });
  return {
    connectionString: `DefaultEndpointsProtocol=http;AccountName=${DEV_ACCOUNT};AccountKey=${DEV_KEY};TableEndpoint=http://127.0.0.1:10002/${DEV_ACCOUNT};`,
    httpClient: transport,
    requests: transport.requests,
  };
}
