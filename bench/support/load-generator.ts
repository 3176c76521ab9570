/**
 * The closed-loop HTTP load generator in a process of its own, as the nodes that enrol are: the service's process
 * pays nothing for the client's sockets and parsing, and a latency measured here holds nothing of the service's own
 * event loop (a response waiting behind service work in a shared loop would count as service time). One process for
 * a whole benchmark, started once; `run` sends it a batch and answers its `LoadResult` and the CPU it spent.
 */
import { fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import { stopChild } from "../../test/support/child-process.js";
import type { LoadRequest, LoadResult } from "./http-load.js";

export interface LoadGenerator {
  run(origin: string, requests: readonly LoadRequest[], concurrency: number): Promise<LoadResult & { generatorCpuMs: number }>;
  close(): Promise<void>;
}

export interface LoadBatch {
  id: number;
  origin: string;
  requests: readonly LoadRequest[];
  concurrency: number;
}

export type LoadReply = { id: number; result: LoadResult; generatorCpuMs: number } | { id: number; error: string };

const ENTRY = fileURLToPath(new URL("./load-generator-process.ts", import.meta.url));

export async function startLoadGenerator(): Promise<LoadGenerator> {
  // Inherits this process's execArgv: under tsx those load TypeScript; the worker's V8 flags come along, harmlessly.
  const child = fork(ENTRY, [], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const reap = () => child.kill("SIGKILL");
  process.once("exit", reap);
  await new Promise<void>((resolve, reject) => {
    child.once("message", () => resolve());
    child.once("exit", (code) => reject(new Error(`load generator exited before it was ready (code ${code})`)));
  });
  let next = 0;
  const pending = new Map<number, { resolve: (r: LoadResult & { generatorCpuMs: number }) => void; reject: (e: Error) => void }>();
  child.on("message", (reply: LoadReply) => {
    const waiter = pending.get(reply.id);
    if (!waiter) return;
    pending.delete(reply.id);
    if ("error" in reply) waiter.reject(new Error(`load generator: ${reply.error}`));
    else waiter.resolve({ ...reply.result, generatorCpuMs: reply.generatorCpuMs });
  });
  const failAll = (error: Error) => {
    for (const waiter of pending.values()) waiter.reject(error);
    pending.clear();
  };
  child.on("exit", (code, signal) => failAll(new Error(`load generator exited (code ${code}, signal ${signal})`)));
  // A send to a child that has gone emits "error" on it; unhandled, that would end this process without its figures.
  child.on("error", (error) => failAll(error));
  return {
    run: (origin, requests, concurrency) =>
      new Promise((resolve, reject) => {
        const id = ++next;
        pending.set(id, { resolve, reject });
        child.send({ id, origin, requests, concurrency } satisfies LoadBatch);
      }),
    close: () => {
      process.off("exit", reap);
      return stopChild(child);
    },
  };
}
