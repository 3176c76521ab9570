/**
 * Counts the process's outgoing HTTP(S) requests by destination, through Node's `http.client.request.start`
 * diagnostics channel: no client is wrapped, so the service's own SDK clients are measured as they are.
 */
import dc from "node:diagnostics_channel";
import type { ClientRequest } from "node:http";

const CHANNEL = "http.client.request.start";

export class HttpCensus {
  private readonly counts = new Map<string, number>();
  private readonly listener = (message: unknown): void => {
    const request = (message as { request: ClientRequest }).request;
    const host = String(request.getHeader("host") ?? request.host);
    this.counts.set(host, (this.counts.get(host) ?? 0) + 1);
  };

  constructor() {
    dc.subscribe(CHANNEL, this.listener);
  }

  /** Requests sent to `host:port` so far. */
  count(hostPort: string): number {
    return this.counts.get(hostPort) ?? 0;
  }

  close(): void {
    dc.unsubscribe(CHANNEL, this.listener);
  }
}

/** `host:port` of a URL, as it appears in the Host header. */
export const hostPortOf = (url: string): string => new URL(url).host;
