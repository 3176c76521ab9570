/**
 * Entry of the single executable. Node 20 runs a single-executable application's script as CommonJS only, and
 * CommonJS has no top-level await, so this is node-agent/src/main.ts without it: the same signal wiring and the same
 * `main(argv, io)` call. Keep the two in step (the packaging test compares the executable's behaviour with the
 * bundle's). In a single executable process.argv[1] repeats the executable's path, so arguments start at index 2.
 */
import { main } from "../src/cli.js";

// SIGTERM (systemd stop) and SIGINT stop `run` cleanly, as in main.ts.
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
