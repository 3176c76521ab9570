/**
 * ARM transport shim for the latency model: a new Arc machine's system-assigned identity gets its principalId only
 * `delayMs` (emulated) after the machine's first PUT; until then PUT and GET answers carry the identity without one,
 * which is what makes the saga poll. The ARM emulator itself always answers with the principal at once.
 */
import type { HttpClient } from "@azure/core-rest-pipeline";
import type { Clock } from "../../test/support/index.js";

const MACHINE = /\/providers\/microsoft\.hybridcompute\/machines\/[^/]+$/;

export function withIdentityDelay(inner: HttpClient, clock: Clock, delayMs: number): HttpClient {
  const createdAt = new Map<string, number>();
  return {
    async sendRequest(request) {
      const response = await inner.sendRequest(request);
      const path = new URL(request.url).pathname.replace(/^\/+/, "/").toLowerCase();
      if (!MACHINE.test(path)) return response;
      if (request.method === "DELETE") createdAt.delete(path);
      if (request.method === "PUT" && response.status < 300 && !createdAt.has(path)) createdAt.set(path, clock.now());
      const at = createdAt.get(path);
      if (at === undefined || clock.now() >= at + delayMs || response.status >= 300 || !response.bodyAsText) return response;
      const body = JSON.parse(response.bodyAsText) as { identity?: { principalId?: string } };
      if (body.identity) delete body.identity.principalId;
      return { ...response, bodyAsText: JSON.stringify(body) };
    },
  };
}
