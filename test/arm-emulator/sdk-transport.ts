/**
 * Test support: connects SDK clients to an emulator over either transport, so one test body can run in-process and
 * over HTTPS. Later suites (sagas, sandbox) can use it the same way.
 */
import type { HttpClient } from "@azure/core-rest-pipeline";
import type { ArmEmulator } from "./arm-emulator.js";

export type TransportKind = "in-process" | "https";

export const TRANSPORTS: readonly TransportKind[] = ["in-process", "https"];

export interface ArmTransport {
  kind: TransportKind;
  /** Spread into any Azure SDK management client's options. */
  options: { httpClient: HttpClient } | { endpoint: string; tlsOptions?: { ca: string } };
  close(): Promise<void>;
}

export async function openTransport(emulator: ArmEmulator, kind: TransportKind): Promise<ArmTransport> {
  if (kind === "in-process") return { kind, options: emulator.clientOptions(), close: () => Promise.resolve() };
  const server = await emulator.listen({ tls: true });
  return { kind, options: server.clientOptions(), close: () => server.close() };
}

/** Retry settings that keep SDK exponential backoff to milliseconds in tests. */
export const FAST_RETRIES = { retryOptions: { maxRetries: 3, retryDelayInMs: 1, maxRetryDelayInMs: 5 } } as const;
export const NO_RETRIES = { retryOptions: { maxRetries: 0 } } as const;
