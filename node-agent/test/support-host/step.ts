/** One step run in a sandbox through runStep, with a recording host and the manifest; for the executor tests. */
import type { JsonObject } from "../../../contract/json.js";
import type { StepKind } from "../../../contract/step-envelope.js";
import { RecordingHostCommands } from "../../src/host-commands.js";
import { Manifest } from "../../src/manifest.js";
import type { ArchiveLimits, SecretSource, StepRunResult } from "../../src/ports.js";
import { resetAll } from "../../src/reset.js";
import { runStep } from "../../src/run-step.js";
import { fakeHostScript } from "./fake-host.js";
import { depsFor, sign } from "./plan.js";
import { createSandbox, type SandboxOptions } from "./sandbox.js";
import { treeListing } from "./tree-hash.js";

export interface HostUnderTest {
  root: string;
  host: RecordingHostCommands;
  log: string[];
  original: string[];
  run(kind: StepKind, params: JsonObject, stepId?: string): Promise<StepRunResult>;
  reset(): ReturnType<typeof resetAll>;
  tree(): Promise<string[]>;
  manifest(): Promise<Manifest>;
}

export async function hostUnderTest(
  o: SandboxOptions & { ca?: string; secrets?: SecretSource; latencyMs?: number; archiveLimits?: ArchiveLimits } = {},
): Promise<HostUnderTest> {
  const root = await createSandbox(o);
  const host = new RecordingHostCommands(fakeHostScript(root), { latencyMs: o.latencyMs ?? 0 });
  const log: string[] = [];
  const deps = depsFor(root, host, {
    ...(o.ca ? { ca: o.ca } : {}),
    ...(o.secrets ? { secrets: o.secrets } : {}),
    ...(o.archiveLimits ? { archiveLimits: o.archiveLimits } : {}),
    log,
  });
  return {
    root,
    host,
    log,
    original: await treeListing(root),
    // Signed but not verified here: runStep itself must refuse bad params (the loop verifies them first as well).
    run: (kind, params, stepId = "step-1") => runStep(sign({ stepId, kind, params }), deps),
    reset: () => resetAll(deps),
    tree: () => treeListing(root),
    manifest: () => Manifest.open(root),
  };
}
