/**
 * `npm start -- --fail-at <saga phase>` and `--arm-throttle`, on the sandbox stack in real time: a failure in each
 * Azure-side phase ends the node Failed with that phase's code after the saga's retries, and compensation leaves the
 * emulators clean; under shrunken ARM buckets the service meets 429s and still onboards its node.
 */
import { inject } from "vitest";
import { afterAll, describe, expect, it } from "vitest";
import { ARM_THROTTLE, injectAzureFault, SAGA_PHASES, sandboxHostSide, startFleet, startStack, summarize, type Stack } from "../sandbox/index.js";

const stacks: Stack[] = [];
afterAll(async () => {
  for (const s of stacks) await s.close();
});

async function stack(options: Parameters<typeof startStack>[0] = {}): Promise<Stack> {
  const s = await startStack({ storageConnectionString: inject("azuriteConnectionString"), ...options });
  stacks.push(s);
  await s.createDemoPool(10);
  return s;
}

const CODES: Record<(typeof SAGA_PHASES)[number], string> = {
  openMailbox: "openMailboxFailed",
  ensureArcMachine: "ensureArcMachineFailed",
  grantAccess: "grantAccessFailed",
  issueKubeletCredential: "issueKubeletCredentialFailed",
  verifyReady: "verifyReadyFailed",
  finalize: "finalizeFailed",
};

describe("Azure-side faults in the sandbox", () => {
  it("fails each saga phase on the Azure side, compensates, and leaves the emulators clean", async () => {
    const s = await stack();
    const seen: Record<string, unknown> = {};
    for (const [i, phase] of SAGA_PHASES.entries()) {
      const fault = injectAzureFault(s, phase);
      const { enrolmentUrl } = await s.createToken({ maxUses: 1 });
      const fleet = await startFleet({
        stack: s,
        enrolmentUrl,
        hostSide: sandboxHostSide,
        specs: [{ name: `edge-${phase}`, immutable: true, arch: "amd64", index: i + 1 }],
      });
      try {
        const outcomes = await fleet.settle(90_000);
        fault.clear();
        const summary = summarize(s, outcomes, 0);
        seen[phase] = {
          status: summary.nodes[0]!.status,
          code: summary.nodes[0]!.error?.code,
          azure: summary.azure,
          kube: summary.kubernetes,
        };
      } finally {
        await fleet.stop({ removeRoots: true });
      }
    }
    const clean = { azure: { arcMachines: [], roleAssignments: [], mailboxQueues: [] }, kube: { nodes: [], bootstrapTokens: 0 } };
    expect(seen).toEqual(Object.fromEntries(SAGA_PHASES.map((p) => [p, { status: "Failed", code: CODES[p], ...clean }])));
  }, 600_000);

  it("--arm-throttle: the service's ARM calls meet 429 with Retry-After, and the node still ends Ready", async () => {
    const s = await stack({ armThrottling: ARM_THROTTLE });
    const { enrolmentUrl } = await s.createToken({ maxUses: 1 });
    const fleet = await startFleet({
      stack: s,
      enrolmentUrl,
      hostSide: sandboxHostSide,
      specs: [{ name: "edge-throttled", immutable: true, arch: "amd64", index: 1 }],
    });
    try {
      const summary = summarize(s, await fleet.settle(120_000), 0);
      expect(summary.nodes.map((n) => n.status)).toEqual(["Ready"]);
      expect(summary.armCalls.throttled).toBeGreaterThan(0);
    } finally {
      await fleet.stop({ removeRoots: true });
    }
  }, 180_000);
});
