#!/usr/bin/env node
/**
 * The agent's entry point, for the ESM bundle and the single executable alike (Node 20 runs a single executable's
 * script as CommonJS only, so no top-level await here). In both, process.argv[1] is the script or the executable,
 * so arguments start at index 2.
 */
import { main } from "./cli.js";

// SIGTERM (systemd stop) and SIGINT stop `run` cleanly: receiver, sender and connections closed before exit.
const controller = new AbortController();
for (const signal of ["SIGTERM", "SIGINT"] as const) process.once(signal, () => controller.abort());

/**
 * Once the command is done, everything it owns is closed; the process then ends when its event loop is empty. A client
 * library's own retry timer must not keep it alive: on the real-host tier, SIGTERM after the service connection had
 * dropped left the Service Bus SDK reconnecting for ~30 s after `run` had stopped, so every stop and reboot waited for
 * systemd's TimeoutStopSec. This is the longest wait for output to drain before the process exits anyway.
 */
const EXIT_GRACE_MS = 2_000;

function finish(code: number): void {
  process.exitCode = code;
  setTimeout(() => process.exit(code), EXIT_GRACE_MS).unref();
}

main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env, signal: controller.signal }).then(finish, (error: unknown) => {
  process.stderr.write(`flexnode-agent: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  finish(1);
});
