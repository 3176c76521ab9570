/**
 * Starts Azurite as a child process: in memory, telemetry off, loopback only, ephemeral ports. Used by the vitest
 * globalSetup and by the local sandbox. `require('azurite')` loads the VS Code extension, so the CLI is spawned.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createRequire } from "node:module";
import { stopChild } from "../support/child-process.js";

export const DEV_ACCOUNT = "devstoreaccount1";
// The well-known Azurite development key: public, documented, and accepted by nothing but emulators.
export const DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

export interface RunningAzurite {
  connectionString: string;
  ports: { blob: number; queue: number; table: number };
  /** Azurite's process (benchmarks read its CPU time). */
  pid: number;
  stop(): Promise<void>;
}

export async function startAzurite(options: { startupTimeoutMs?: number } = {}): Promise<RunningAzurite> {
  const cli = createRequire(import.meta.url).resolve("azurite/dist/src/azurite.js");
  const args = [
    cli,
    "--inMemoryPersistence",
    "--disableTelemetry",
    "--skipApiVersionCheck",
    "--loose",
    // No access log: one line per request, formatted by Azurite and read by this process, costs both CPU.
    "--silent",
    ...["blob", "queue", "table"].flatMap((s) => [`--${s}Host`, "127.0.0.1", `--${s}Port`, "0"]),
  ];
  const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
  // A process that exits without stopping it (process.exit after a failure; a benchmark whose parent went away) must
  // not leave Azurite running.
  const reap = () => child.kill("SIGKILL");
  process.once("exit", reap);
  const ports = await waitForPorts(child, options.startupTimeoutMs ?? 30_000);
  const endpoint = (p: number) => `http://127.0.0.1:${p}/${DEV_ACCOUNT}`;
  return {
    ports,
    pid: child.pid!,
    connectionString:
      `DefaultEndpointsProtocol=http;AccountName=${DEV_ACCOUNT};AccountKey=${DEV_KEY};` +
      `BlobEndpoint=${endpoint(ports.blob)};QueueEndpoint=${endpoint(ports.queue)};TableEndpoint=${endpoint(ports.table)};`,
    stop: () => {
      process.off("exit", reap);
      return stopChild(child);
    },
  };
}

function waitForPorts(child: ChildProcess, timeoutMs: number): Promise<RunningAzurite["ports"]> {
  return new Promise((resolve, reject) => {
    const found: Partial<Record<"blob" | "queue" | "table", number>> = {};
    let output = "";
    const timer = setTimeout(() => fail(new Error(`Azurite did not listen within ${timeoutMs} ms:\n${output}`)), timeoutMs);
    const fail = (error: Error) => {
      clearTimeout(timer);
      child.kill("SIGKILL");
      reject(error);
    };
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      for (const m of output.matchAll(/Azurite (Blob|Queue|Table) service is successfully listening at http:\/\/127\.0\.0\.1:(\d+)/g)) {
        found[m[1]!.toLowerCase() as "blob" | "queue" | "table"] = Number(m[2]);
      }
      if (found.blob && found.queue && found.table) {
        clearTimeout(timer);
        child.stdout?.off("data", onData);
        child.stderr?.off("data", onData);
        // Keep draining so a chatty child never blocks on a full pipe.
        child.stdout?.resume();
        child.stderr?.resume();
        resolve({ blob: found.blob, queue: found.queue, table: found.table });
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.once("exit", (code, signal) => fail(new Error(`Azurite exited early (code ${code}, signal ${signal}):\n${output}`)));
  });
}
