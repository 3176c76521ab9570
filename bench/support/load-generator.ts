/**
 * The closed-loop HTTP load generator in a process of its own, as the nodes that enrol are: the service's process
 * pays nothing for the client's sockets and parsing, and a latency measured here holds nothing of the service's own
 * event loop (a response waiting behind service work in a shared loop would count as service time). One process for
 * a whole benchmark, started once; `run` sends it a batch and answers its `LoadResult` and the CPU it spent.
 */
import { fileURLToPath } from "node:url";
import { forkHelper } from "./child-rpc.js";
import type { LoadRequest, LoadResult } from "./http-load.js";

export interface LoadGenerator {
  run(origin: string, requests: readonly LoadRequest[], concurrency: number): Promise<LoadResult & { generatorCpuMs: number }>;
  close(): Promise<void>;
}

export interface LoadBatch {
  origin: string;
  requests: readonly LoadRequest[];
  concurrency: number;
}

export type LoadReply = LoadResult & { generatorCpuMs: number };

const ENTRY = fileURLToPath(new URL("./load-generator-process.ts", import.meta.url));

export async function startLoadGenerator(): Promise<LoadGenerator> {
  const helper = await forkHelper<LoadBatch, LoadReply, true>(ENTRY, "load generator");
  return {
    run: (origin, requests, concurrency) => helper.call({ origin, requests, concurrency }),
    close: () => helper.close(),
  };
}
