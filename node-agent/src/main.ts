#!/usr/bin/env node
import { main } from "./cli.js";

// SIGTERM (systemd stop) and SIGINT stop `run` cleanly: receiver, sender and connections closed before exit.
const controller = new AbortController();
for (const signal of ["SIGTERM", "SIGINT"] as const) process.once(signal, () => controller.abort());

process.exitCode = await main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env, signal: controller.signal });
