/**
 * The function app over real HTTP on 127.0.0.1, with the HTTP side in a process of its own, as in Azure: the Functions
 * host (a .NET process) terminates HTTP, and hands each request to the Node worker as an invocation over one gRPC
 * stream opened at start-up. Here the front process (host-front-process.ts) reads each request and sends it over its
 * IPC channel, opened once; this process invokes the Functions host stand-in's router exactly as `app.call` does and
 * sends the response back the same way. So the service's process pays for decoding and encoding a message per
 * request, as the worker does, and never for accepting connections or parsing HTTP.
 *
 * Why not node:http in the service's process, as until 2026-12-07: a Node server whose event loop is busy accepts one
 * new connection per turn of the loop. The 32 connections a measured batch opened then reached the enrolment code one
 * turn (~10 ms at full load) apart, so the first wave of every batch waited up to ~450 ms, and those requests were
 * the batch's p99. The worker in Azure accepts no connections at all.
 */
import type { ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { FunctionsHost } from "../../test/functions-host/index.js";
import { forkChild } from "./child-rpc.js";

export interface HttpFront {
  origin: string;
  /** The front's process. */
  pid: number;
  close(): Promise<void>;
}

/** A request as the front process forwards it. */
export interface FrontRequest {
  id: number;
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string;
}

/** The answer this process sends back for a request id. */
export interface FrontResponse {
  id: number;
  status: number;
  headers: Record<string, string>;
  body: string;
}

const ENTRY = fileURLToPath(new URL("./host-front-process.ts", import.meta.url));

export async function serveOverHttp(host: FunctionsHost): Promise<HttpFront> {
  const { child, ready, close } = await forkChild<{ port: number }>(ENTRY, "host front");
  child.on("message", (message) => void answer(host, child, message as FrontRequest));
  return { origin: `http://127.0.0.1:${ready.port}`, pid: child.pid!, close };
}

async function answer(host: FunctionsHost, child: ChildProcess, request: FrontRequest): Promise<void> {
  let response: FrontResponse;
  try {
    const result = await host.handleHttp({ method: request.method, url: request.url, headers: request.headers, body: request.body });
    response = { id: request.id, status: result.status, headers: result.headers, body: result.body };
  } catch (error) {
    response = { id: request.id, status: 500, headers: { "content-type": "text/plain" }, body: error instanceof Error ? error.message : String(error) };
  }
  // A front that has gone (the benchmark is closing) cannot take the answer; nobody is waiting for it either.
  if (child.connected) child.send(response);
}
