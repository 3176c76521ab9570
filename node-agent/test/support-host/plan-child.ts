/**
 * Child-process agent for the kill -9 and read-only-/usr tests: verifies each signed envelope as the mailbox loop
 * will, runs it with runStep against the fake host, and reports progress on stdout ("begin i", "end i outcome").
 * It is bundled with esbuild first, like the real agent, so a restart costs a node start-up, not a TypeScript compile.
 * Usage: node plan-child.mjs <config.json>
 */
import { readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { importPublicKey } from "../../../contract/keys.js";
import { verifyStepEnvelope } from "../../../contract/step-envelope.js";
import { StepParamsSchemas } from "../../../contract/step-params.js";
import { RecordingHostCommands } from "../../src/host-commands.js";
import type { StepDeps } from "../../src/ports.js";
import { resetAll } from "../../src/reset.js";
import { runStep } from "../../src/run-step.js";
import { fakeHostScript } from "./fake-host.js";

export interface ChildConfig {
  root: string;
  nodeId: string;
  servicePublicKey: string;
  envelopes: unknown[];
  ca?: string;
  secret: { ref: string; value: string };
  /** Simulated duration of each host command and of the secret's round trip to the node API. */
  latencyMs: number;
  reset?: boolean;
  /** Try to write <root>/usr and /usr first and report the errno of each. */
  probeUsr?: boolean;
  /** Stay alive after "done" until killed: a kill aimed at the last step must land even when the plan finished first. */
  linger?: boolean;
}

const say = (line: string) => writeFileSync(1, `${line}\n`);

function probe(file: string): string {
  try {
    writeFileSync(file, "x");
    return "WRITABLE";
  } catch (e) {
    return (e as NodeJS.ErrnoException).code ?? "ERROR";
  }
}

async function main(): Promise<number> {
  const config = JSON.parse(readFileSync(process.argv[2]!, "utf8")) as ChildConfig;
  if (config.probeUsr) say(`usr-probe ${probe(path.join(config.root, "usr/.flexnode-probe"))} ${probe("/usr/.flexnode-probe")}`);
  const sleep = () => new Promise((r) => setTimeout(r, config.latencyMs));
  const deps: StepDeps = {
    root: config.root,
    host: new RecordingHostCommands(fakeHostScript(config.root), { latencyMs: config.latencyMs }),
    secrets: {
      async take(ref) {
        await sleep();
        if (ref !== config.secret.ref) throw new Error(`no secret ${ref}`);
        return config.secret.value;
      },
    },
    ...(config.ca ? { ca: config.ca } : {}),
    now: () => new Date(),
    log: () => undefined,
  };
  const servicePublicKey = importPublicKey(config.servicePublicKey);
  for (const [i, raw] of config.envelopes.entries()) {
    const envelope = verifyStepEnvelope(raw, { servicePublicKey, nodeId: config.nodeId, now: new Date(), paramsSchemas: StepParamsSchemas });
    say(`begin ${i}`);
    const result = await runStep(envelope, deps);
    say(`end ${i} ${result.outcome}`);
    if (result.outcome === "failed") {
      say(`failed ${i} ${JSON.stringify(result.error)}`);
      return 2;
    }
  }
  if (config.reset) {
    const report = await resetAll(deps);
    say(`reset ${report.undone.length} ${JSON.stringify(report.failed)}`);
    if (report.failed.length > 0) return 3;
  }
  say("done");
  if (config.linger) await new Promise(() => setInterval(() => undefined, 60_000));
  return 0;
}

process.exitCode = await main();
