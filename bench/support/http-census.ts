/**
 * Counts the process's outgoing HTTP(S) requests by destination, through Node's `http.client.request.start`
 * diagnostics channel: no client is wrapped, so the service's own SDK clients are measured as they are.
 */
import type { AsyncLocalStorage } from "node:async_hooks";
import dc from "node:diagnostics_channel";
import type { ClientRequest } from "node:http";
import { performance } from "node:perf_hooks";

const CHANNEL = "http.client.request.start";
const FINISHED = "http.client.response.finish";

export class HttpCensus {
  private readonly counts = new Map<string, number>();
  private readonly scopedCounts = new Map<string, number>();
  private readonly waited = new Map<string, number>();
  private readonly started = new WeakMap<ClientRequest, number>();
  private readonly listener = (message: unknown): void => {
    const request = (message as { request: ClientRequest }).request;
    const host = hostOf(request);
    this.counts.set(host, (this.counts.get(host) ?? 0) + 1);
    // The channel publishes in the caller's async context, so the scope of the code that sent the request is here.
    if (this.options.scope?.getStore()) this.scopedCounts.set(host, (this.scopedCounts.get(host) ?? 0) + 1);
    this.started.set(request, performance.now());
  };
  private readonly finished = (message: unknown): void => {
    const request = (message as { request: ClientRequest }).request;
    const started = this.started.get(request);
    if (started === undefined) return;
    const host = hostOf(request);
    this.waited.set(host, (this.waited.get(host) ?? 0) + performance.now() - started);
  };

  constructor(private readonly options: { scope?: AsyncLocalStorage<unknown> } = {}) {
    dc.subscribe(CHANNEL, this.listener);
    dc.subscribe(FINISHED, this.finished);
  }

  /** Milliseconds requests to `host:port` took so far, from sending to the response's headers, summed. */
  waitedMs(hostPort: string): number {
    return this.waited.get(hostPort) ?? 0;
  }

  /** Requests sent to `host:port` so far. */
  count(hostPort: string): number {
    return this.counts.get(hostPort) ?? 0;
  }

  /** Of those, the ones sent from work run in the `scope` option. */
  countInScope(hostPort: string): number {
    return this.scopedCounts.get(hostPort) ?? 0;
  }

  close(): void {
    dc.unsubscribe(CHANNEL, this.listener);
    dc.unsubscribe(FINISHED, this.finished);
  }
}

const hostOf = (request: ClientRequest): string => String(request.getHeader("host") ?? request.host);

/** `host:port` of a URL, as it appears in the Host header. */
export const hostPortOf = (url: string): string => new URL(url).host;
