/** Shared setup for the emulator's tests: a started emulator on a ManualClock and the real client pointed at it. */
import https from "node:https";
import { KubeClient, type KubeClientOptions } from "../../orchestrations/clients/kube/index.js";
import { ManualClock } from "../support/index.js";
import { KubeEmulator, type RunningKubeEmulator } from "./index.js";

export const ADMIN_TOKEN = "kube-admin-token-0123456789abcdef";

export interface Cluster {
  clock: ManualClock;
  emulator: KubeEmulator;
  running: RunningKubeEmulator;
  /** Authenticated with ADMIN_TOKEN (a cluster admin). */
  client: KubeClient;
  /** Another client on the same server with a different token. */
  clientWith(token: string, options?: KubeClientOptions): KubeClient;
  close(): Promise<void>;
}

export async function startCluster(options: KubeClientOptions = {}): Promise<Cluster> {
  const clock = new ManualClock();
  const emulator = new KubeEmulator({ clock, tokens: [ADMIN_TOKEN] });
  const running = await emulator.start();
  const clients: KubeClient[] = [];
  const clientWith = (token: string, extra: KubeClientOptions = {}) => {
    const client = new KubeClient({ server: running.server, caPem: running.caPem, token }, { ...options, ...extra });
    clients.push(client);
    return client;
  };
  const client = clientWith(ADMIN_TOKEN);
  return {
    clock,
    emulator,
    running,
    client,
    clientWith,
    close: async () => {
      for (const c of clients) c.close();
      await running.close();
    },
  };
}

/** A bare HTTPS call, for wire details the client hides (status bodies, methods it never uses). */
export function rawRequest(
  running: RunningKubeEmulator,
  method: string,
  path: string,
  options: { token?: string; body?: unknown } = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
  return new Promise((resolve, reject) => {
    const req = https.request(
      `${running.server}${path}`,
      {
        method,
        ca: running.caPem,
        agent: false,
        headers: {
          ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
          ...(payload ? { "content-type": "application/json" } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          resolve({ status: res.statusCode ?? 0, body: text === "" ? {} : (JSON.parse(text) as Record<string, unknown>) });
        });
      },
    );
    req.on("error", reject);
    req.end(payload);
  });
}
