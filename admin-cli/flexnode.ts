#!/usr/bin/env node
/** The `flexnode` bin: the admin CLI (main.ts) wired to this process. */
import { run } from "./main.js";

// `flexnode nodes list | head`: a reader that went away is not an error worth a stack trace.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code === "EPIPE") process.exit(process.exitCode ?? 0);
  throw error;
});

process.exitCode = await run(process.argv.slice(2), {
  out: (line) => void process.stdout.write(`${line}\n`),
  err: (line) => void process.stderr.write(`${line}\n`),
  env: process.env,
});
