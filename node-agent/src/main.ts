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

main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env, signal: controller.signal }).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`flexnode-agent: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  },
);
