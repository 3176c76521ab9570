/**
 * A host side for tests of the service loop, until (and besides) the real executors: each step appends a line to a real
 * file under the test root, so "ran once" and "changed nothing" are read from disk, and may hold for `holdMs` (a step
 * longer than the message lock). The manifest digest is the digest of those files.
 */
import { createHash } from "node:crypto";
import { appendFile, mkdir, readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { HostSide } from "../../src/agent.js";
import type { RunStep } from "../../src/ports.js";

export const STEP_LOG_DIR = "/var/lib/flexnode-test/steps";

export async function manifestDigestOf(root: string): Promise<string> {
  const hash = createHash("sha256");
  const dir = join(root, STEP_LOG_DIR);
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const name of names.sort()) hash.update(`${name}\n${await readFile(join(dir, name), "utf8")}`);
  return `sha256:${hash.digest("hex")}`;
}

/** How many times each step attempt ran, from the files on disk. */
export async function runsOnDisk(root: string): Promise<Record<string, number>> {
  const dir = join(root, STEP_LOG_DIR);
  const out: Record<string, number> = {};
  for (const name of (await readdir(dir).catch(() => [] as string[])).sort()) {
    out[name] = (await readFile(join(dir, name), "utf8")).split("\n").filter(Boolean).length;
  }
  return out;
}

export const recordingRunStep: RunStep = async (envelope, deps) => {
  const holdMs = typeof envelope.params["holdMs"] === "number" ? envelope.params["holdMs"] : 0;
  if (holdMs > 0) await new Promise((r) => setTimeout(r, holdMs));
  const dir = join(deps.root, STEP_LOG_DIR);
  await mkdir(dir, { recursive: true });
  await appendFile(join(dir, `${envelope.stepId}.${envelope.attempt}`), `${deps.now().toISOString()} ${envelope.kind}\n`);
  deps.log(`recorded ${envelope.stepId}`);
  if (envelope.params["fail"] === true) {
    return { outcome: "failed", error: { code: "TestFailure", message: "asked to fail", retryable: false }, manifestDigest: await manifestDigestOf(deps.root) };
  }
  return { outcome: "succeeded", output: { ran: envelope.stepId }, manifestDigest: await manifestDigestOf(deps.root) };
};

export const testHostSide: HostSide = { runStep: recordingRunStep, manifestDigest: manifestDigestOf };
