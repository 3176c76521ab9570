/**
 * The Durable client of an invocation, built once per binding. `df.app.client.*` build a new DurableClient on every
 * invocation (a deep copy of the binding, URL checks, a new axios instance): ~3 % of an enrolment's CPU in
 * bench/enrol-throughput.ts. The host hands every invocation the same binding data until it changes it (a rotated
 * system key, say), so the client is rebuilt only when the binding differs from the last one; a DurableClient keeps
 * no per-call state.
 */
import type { InvocationContext } from "@azure/functions";
import * as df from "durable-functions";
import type { DurableClient } from "durable-functions";

/** The input binding every trigger that talks to Durable declares in `extraInputs`. */
export const durableClientInput = df.input.durableClient();

let last: { binding: string; client: DurableClient } | undefined;

export function durableClientOf(context: InvocationContext): DurableClient {
  const binding = JSON.stringify(context.extraInputs.get(durableClientInput));
  if (last?.binding !== binding) last = { binding, client: df.getClient(context) };
  return last.client;
}
