/**
 * The Durable client of an invocation, built once per binding. `df.app.client.*` build a new DurableClient on every
 * invocation (a deep copy of the binding, URL checks, a new axios instance): ~3 % of an enrolment's CPU in
 * bench/enrol-throughput.ts. The host hands every invocation the same binding data until it changes it (a rotated
 * system key, say), so the client is rebuilt only when the binding differs from the last one; a DurableClient keeps
 * no per-call state. The WorkflowClient over it is built with it. It starts orchestrations at the binding's
 * `rpcBaseUrl`, the extension's local endpoint, which the DurableClient itself prefers (orchestration-start.ts says
 * why not through the client); a binding without one (an extension with that endpoint turned off) starts through the
 * DurableClient's creation URL.
 */
import type { InvocationContext } from "@azure/functions";
import * as df from "durable-functions";
import type { DurableClient } from "durable-functions";
import * as z from "zod";
import { httpOrchestrationStarter } from "../orchestrations/clients/orchestration-start.js";
import { workflowClientFrom, type WorkflowClient } from "../orchestrations/clients/workflow-client.js";

/** The input binding every trigger that talks to Durable declares in `extraInputs`. */
export const durableClientInput = df.input.durableClient();

/** The one field of the binding read here; the DurableClient reads the rest. */
const StartEndpoint = z.object({ rpcBaseUrl: z.url({ protocol: /^https?$/ }).optional() });

export interface Durable {
  client: DurableClient;
  workflows: WorkflowClient;
}

let last: { binding: string; durable: Durable } | undefined;

export function durableOf(context: InvocationContext): Durable {
  const data = context.extraInputs.get(durableClientInput);
  const binding = JSON.stringify(data);
  if (last?.binding !== binding) {
    const client = df.getClient(context);
    const { rpcBaseUrl } = StartEndpoint.parse(data);
    const start = rpcBaseUrl
      ? httpOrchestrationStarter(rpcBaseUrl)
      : (name: string, options: { instanceId: string; input: unknown }) => client.startNew(name, options).then(() => undefined);
    last = { binding, durable: { client, workflows: workflowClientFrom(client, start) } };
  }
  return last.durable;
}

export const durableClientOf = (context: InvocationContext): DurableClient => durableOf(context).client;
