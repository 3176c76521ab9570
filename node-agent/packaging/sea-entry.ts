/**
 * Entry of the single executable. Node 20 runs a single-executable application's script as CommonJS only, and
 * CommonJS has no top-level await, so this is node-agent/src/main.ts without it: the same `main(argv, io)` call.
 * In a single executable process.argv[1] repeats the executable's path, so the arguments start at index 2 as usual.
 */
import { main } from "../src/cli.js";

main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env }).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`flexnode-agent: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  },
);
