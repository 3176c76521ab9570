/**
 * The Arc machine DELETE as ARM runs it from api-version 2025-01-13: 202 with Azure-AsyncOperation, Location and
 * Retry-After (the published example asks for 200 s), or 200/204 when there is nothing to wait for. The SDK's poller
 * would sleep out every Retry-After inside one activity; here each request is its own step, so the saga waits
 * between them on a durable timer and no worker is held for minutes.
 * Monitor: Azure-AsyncOperation when given (200 with `status` InProgress | Succeeded | Failed | Canceled), else
 * Location (202 while running, 200/204 when done) — azure-docs azure-resource-manager/management/async-operations.md.
 */
import { createHttpHeaders, createPipelineRequest, RestError, type PipelineResponse } from "@azure/core-rest-pipeline";
import type { ResourceManagementClient } from "@azure/arm-resources";
import { API_VERSIONS } from "./arm-clients.js";
import { ARC_MACHINES, pathArg } from "./resource-id.js";

export type DeletionProgress =
  | { done: true }
  | {
      done: false;
      /** The URL to ask next: Azure-AsyncOperation, or Location when ARM gave only that. */
      monitor: { url: string; kind: "asyncOperation" | "location" };
      /** What Retry-After asked for; undefined when ARM gave none. */
      retryAfterMs: number | undefined;
    };

export class MachineDeletionFailedError extends Error {
  constructor(
    readonly machineId: string,
    readonly status: string,
    detail: string,
  ) {
    super(`deletion of ${machineId} ended ${status}: ${detail}`);
    this.name = "MachineDeletionFailedError";
  }
}

/** Sends the DELETE; a machine already gone is done. */
export async function startMachineDeletion(client: ResourceManagementClient, endpoint: string, machineId: string): Promise<DeletionProgress> {
  const url = `${endpoint.replace(/\/+$/, "")}/${pathArg(machineId)}?api-version=${API_VERSIONS[ARC_MACHINES]}`;
  const res = await send(client, "DELETE", url);
  if (res.status === 200 || res.status === 204 || res.status === 404) return { done: true };
  if (res.status !== 202) throw restError(res);
  return pending(res, machineId);
}

/**
 * Asks the monitor once. ARM keeps an operation's monitor only for a while: one that is gone (404) after a long wait
 * is settled by the machine itself — absent is done, present is an error the saga's retries and report take.
 */
export async function checkMachineDeletion(
  client: ResourceManagementClient,
  endpoint: string,
  machineId: string,
  monitor: { url: string; kind: "asyncOperation" | "location" },
): Promise<DeletionProgress> {
  const res = await send(client, "GET", monitor.url);
  if (res.status === 404) {
    const machine = await send(client, "GET", `${endpoint.replace(/\/+$/, "")}/${pathArg(machineId)}?api-version=${API_VERSIONS[ARC_MACHINES]}`);
    if (machine.status === 404) return { done: true };
    throw restError(res);
  }
  if (monitor.kind === "location") {
    if (res.status === 202) return pending(res, machineId, monitor);
    if (res.status === 200 || res.status === 204) return { done: true };
    throw restError(res);
  }
  if (res.status !== 200) throw restError(res);
  const body = parse(res.bodyAsText);
  const status = typeof body?.status === "string" ? body.status : "";
  if (status === "Succeeded") return { done: true };
  if (status === "Failed" || status === "Canceled") throw new MachineDeletionFailedError(machineId, status, JSON.stringify(body?.error ?? {}));
  return pending(res, machineId, monitor);
}

function pending(res: PipelineResponse, machineId: string, current?: { url: string; kind: "asyncOperation" | "location" }): DeletionProgress {
  const asyncOperation = res.headers.get("azure-asyncoperation");
  const location = res.headers.get("location");
  const monitor = asyncOperation ? { url: asyncOperation, kind: "asyncOperation" as const } : location ? { url: location, kind: "location" as const } : current;
  if (!monitor) throw new Error(`DELETE ${machineId} answered 202 without Azure-AsyncOperation or Location`);
  const seconds = Number(res.headers.get("retry-after"));
  return { done: false, monitor, retryAfterMs: Number.isFinite(seconds) && seconds > 0 ? Math.round(seconds * 1000) : undefined };
}

async function send(client: ResourceManagementClient, method: "GET" | "DELETE", url: string): Promise<PipelineResponse> {
  return client.sendRequest(createPipelineRequest({ url, method, headers: createHttpHeaders({ accept: "application/json" }) }));
}

/** The error the SDK would have thrown: callers branch on statusCode (404, 429) as for any SDK call. */
function restError(res: PipelineResponse): RestError {
  const body = parse(res.bodyAsText);
  const error = (body?.error ?? {}) as { code?: string; message?: string };
  return new RestError(error.message ?? `HTTP ${res.status}`, { statusCode: res.status, code: error.code, request: res.request, response: res });
}

function parse(text: string | undefined | null): Record<string, unknown> | undefined {
  if (!text) return undefined;
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}
