/** Builds plan-child.ts into one .mjs (as the agent itself is shipped) and runs it, following its progress lines. */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { build } from "esbuild";
import type { ChildConfig } from "./plan-child.js";

export async function bundlePlanChild(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), "flexnode-child-"));
  const outfile = path.join(dir, "plan-child.mjs");
  await build({
    entryPoints: [path.join(import.meta.dirname, "plan-child.ts")],
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    outfile,
    logLevel: "silent",
    // CommonJS dependencies inside an ESM bundle still call require() for Node built-ins.
    banner: { js: "import { createRequire as __flexnodeRequire } from 'node:module'; const require = __flexnodeRequire(import.meta.url);" },
  });
  return outfile;
}

export interface RunningChild {
  process: ChildProcess;
  lines: string[];
  /** Resolves with the first line matching, or undefined if the child exits first. */
  waitFor(pattern: RegExp): Promise<string | undefined>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
}

export async function startChild(bundle: string, config: ChildConfig, wrap?: (argv: string[]) => string[]): Promise<RunningChild> {
  const configFile = path.join(path.dirname(bundle), `config-${process.hrtime.bigint()}.json`);
  await writeFile(configFile, JSON.stringify(config));
  const argv = [process.execPath, bundle, configFile];
  const [file, ...args] = wrap ? wrap(argv) : argv;
  const child = spawn(file!, args, { stdio: ["ignore", "pipe", "pipe"] });
  const lines: string[] = [];
  const waiters: { pattern: RegExp; resolve(line: string | undefined): void }[] = [];
  let buffered = "";
  let stderr = "";
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
    buffered += chunk;
    const parts = buffered.split("\n");
    buffered = parts.pop()!;
    for (const line of parts) {
      lines.push(line);
      for (const w of [...waiters]) {
        if (w.pattern.test(line)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
    }
  });
  child.stderr!.setEncoding("utf8").on("data", (c: string) => (stderr += c));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) =>
    child.on("close", (code, signal) => {
      for (const w of waiters.splice(0)) w.resolve(undefined);
      resolve({ code, signal, stderr });
    }),
  );
  return {
    process: child,
    lines,
    exited,
    waitFor(pattern) {
      const seen = lines.find((l) => pattern.test(l));
      if (seen !== undefined) return Promise.resolve(seen);
      if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(undefined);
      return new Promise((resolve) => waiters.push({ pattern, resolve }));
    },
  };
}
