/**
 * The in-process transport: a core-rest-pipeline HttpClient handed to an SDK client as its `httpClient` option. No
 * socket is opened, the URL stays `https://management.azure.com/...`, and the SDK's own pipeline (auth, retry, LRO
 * polling) runs unchanged in front of it.
 */
import { createHttpHeaders, RestError, type HttpClient, type PipelineRequest, type PipelineResponse } from "@azure/core-rest-pipeline";
import { serialiseBody, type EmulatorRequest, type EmulatorResponse } from "./wire.js";

export function inProcessHttpClient(handle: (request: EmulatorRequest) => Promise<EmulatorResponse>): HttpClient {
  return {
    async sendRequest(request: PipelineRequest): Promise<PipelineResponse> {
      throwIfAborted(request);
      const headers: Record<string, string> = {};
      for (const [name, value] of request.headers) headers[name.toLowerCase()] = value;
      const response = await handle({ method: request.method, url: request.url, headers, body: bodyText(request) });
      throwIfAborted(request);
      if (response.dropConnection) {
        // What Node's HTTP client reports when the peer resets the socket; the SDK retries it as a system error.
        throw new RestError("socket hang up", { code: "ECONNRESET", request });
      }
      return {
        request,
        status: response.status,
        headers: createHttpHeaders(response.headers),
        bodyAsText: serialiseBody(response.body),
      };
    },
  };
}

function bodyText(request: PipelineRequest): string | undefined {
  const body = request.body;
  if (body === undefined || body === null) return undefined;
  if (typeof body === "string") return body;
  if (body instanceof Uint8Array) return Buffer.from(body).toString("utf8");
  throw new RestError("the ARM emulator's in-process client only accepts string or byte bodies", { request });
}

function throwIfAborted(request: PipelineRequest): void {
  if (request.abortSignal?.aborted) {
    const error = new Error("The operation was aborted.");
    error.name = "AbortError";
    throw error;
  }
}
