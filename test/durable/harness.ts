/**
 * One call that wires the orchestration tier together: the Functions host stand-in, the Durable simulator, and the
 * loopback client endpoint bound to every `durableClient` input, so `df.app.client.*` functions and `df.getClient`
 * work as they do under the real host.
 */
import { FunctionsHost, type FunctionsHostOptions } from "../functions-host/index.js";
import { startDurableClientServer, type DurableClientServer } from "./client-server.js";
import { DurableSimulator, type DurableSimulatorOptions } from "./simulator.js";

export interface DurableHarness {
  host: FunctionsHost;
  simulator: DurableSimulator;
  clientServer: DurableClientServer;
  close(): Promise<void>;
}

export async function startDurableHarness(options: DurableSimulatorOptions & { hostOptions?: FunctionsHostOptions } = {}): Promise<DurableHarness> {
  const host = options.host ?? new FunctionsHost(options.hostOptions);
  const simulator = new DurableSimulator({ ...options, host });
  const clientServer = await startDurableClientServer(simulator);
  host.provideInput("durableClient", () => clientServer.binding);
  return {
    host,
    simulator,
    clientServer,
    close: async () => {
      simulator.close();
      await clientServer.close();
    },
  };
}
