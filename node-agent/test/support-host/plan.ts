/**
 * Drives a plan the way the agent will: the service's buildNodePlan, envelopes signed with a service key, verified
 * with the params schemas, then runStep on each, stopping at the first failure.
 */
import { generateKeyPairSync } from "node:crypto";
import { exportPublicKey, importPublicKey } from "../../../contract/keys.js";
import { buildStepEnvelope, verifyStepEnvelope, type StepEnvelope } from "../../../contract/step-envelope.js";
import { StepParamsSchemas } from "../../../contract/step-params.js";
import { buildNodePlan, type ArtifactCatalog, type PlanStep } from "../../../orchestrations/node-plan/node-plan.js";
import type { ArchiveLimits, HostCommands, SecretSource, StepDeps, StepRunResult } from "../../src/ports.js";
import { runStep } from "../../src/run-step.js";

export const NODE_ID = "node-edge-1";
export const BOOTSTRAP_REF = "bootstrap-kubeconfig";
export const BOOTSTRAP_KUBECONFIG = "apiVersion: v1\nkind: Config\nusers:\n- name: kubelet-bootstrap\n  user: {token: abcdef.0123456789abcdef}\n";

const serviceKeys = generateKeyPairSync("ed25519");
export const servicePublicKey = exportPublicKey(serviceKeys.publicKey);

export function testPlan(o: { immutable: boolean; arch?: "amd64" | "arm64"; catalog: ArtifactCatalog; apiServer: string }): PlanStep[] {
  return buildNodePlan({
    nodeName: NODE_ID,
    arch: o.arch ?? "amd64",
    immutable: o.immutable,
    kubernetesVersion: "1.31.2",
    apiServer: o.apiServer,
    clusterDns: "10.0.0.10",
    labels: { pool: "edge" },
    taints: [{ key: "flexnode.dev/edge", effect: "NoSchedule" }],
    bootstrapSecretRef: BOOTSTRAP_REF,
    clusterCaPem: "-----BEGIN CERTIFICATE-----\nMIIBplaceholderclusterca\n-----END CERTIFICATE-----\n",
    catalog: o.catalog,
  });
}

export function sign(step: Pick<PlanStep, "stepId" | "kind" | "params">, attempt = 1): StepEnvelope {
  const issuedAt = new Date();
  return buildStepEnvelope(
    {
      nodeId: NODE_ID,
      sagaId: "saga-1",
      stepId: step.stepId,
      attempt,
      kind: step.kind,
      params: step.params,
      issuedAt,
      expiresAt: new Date(issuedAt.getTime() + 3_600_000),
    },
    { privateKey: serviceKeys.privateKey },
  );
}

/** The agent side of the envelope: signature, node, validity window and params, as the mailbox loop will check. */
export function verify(raw: unknown, publicKey = servicePublicKey): StepEnvelope {
  return verifyStepEnvelope(raw, { servicePublicKey: importPublicKey(publicKey), nodeId: NODE_ID, now: new Date(), paramsSchemas: StepParamsSchemas });
}

export function secretsOf(values: Record<string, string>): SecretSource & { taken: string[] } {
  const taken: string[] = [];
  return {
    taken,
    async take(ref) {
      taken.push(ref);
      const v = values[ref];
      if (v === undefined) throw new Error(`no secret ${ref}`);
      return v;
    },
  };
}

export function depsFor(
  root: string,
  host: HostCommands,
  o: { ca?: string; secrets?: SecretSource; log?: string[]; archiveLimits?: ArchiveLimits } = {},
): StepDeps {
  return {
    root,
    host,
    secrets: o.secrets ?? secretsOf({ [BOOTSTRAP_REF]: BOOTSTRAP_KUBECONFIG }),
    ...(o.ca ? { ca: o.ca } : {}),
    ...(o.archiveLimits ? { archiveLimits: o.archiveLimits } : {}),
    now: () => new Date(),
    log: (line) => void o.log?.push(line),
  };
}

export interface PlanRun {
  results: { stepId: string; result: StepRunResult }[];
  ok: boolean;
}

export async function runPlan(
  envelopes: readonly StepEnvelope[],
  deps: StepDeps,
  hooks: { begin?(i: number): void; end?(i: number, r: StepRunResult): void } = {},
): Promise<PlanRun> {
  const results: PlanRun["results"] = [];
  for (const [i, raw] of envelopes.entries()) {
    const envelope = verify(JSON.parse(JSON.stringify(raw)));
    hooks.begin?.(i);
    const result = await runStep(envelope, deps);
    hooks.end?.(i, result);
    results.push({ stepId: envelope.stepId, result });
    if (result.outcome === "failed") return { results, ok: false };
  }
  return { results, ok: true };
}
