/**
 * A failure at each node step of the plan, injected on the node the way that step fails on a real machine
 * (test/sandbox/failure-injection.ts): the node ends Failed with an error naming the step, the agent was told to
 * reset and its sandbox root is back to the tree it had before the first step, and nothing made for the node is
 * left in the emulators. All cases run at once on one stack, one node each; cases that corrupt an artifact on the
 * shared mirror get an OS family / architecture whose plan no other case's node downloads that artifact with.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ArtifactCatalog, PlanStep } from "../../orchestrations/node-plan/node-plan.js";
import {
  failureFor,
  KUBERNETES_VERSION,
  planFor,
  SANDBOX_TIMING,
  sandboxHostSide,
  startFleet,
  treeDiff,
  treeSnapshot,
  type Fleet,
  type NodeOutcome,
  type NodeSpec,
  type Stack,
  type TreeSnapshot,
} from "../sandbox/index.js";
import { nodeQueues, objectsOf, startE2eStack, stepsOf } from "./support.js";

type Variant = Pick<NodeSpec, "immutable" | "arch">;
const VARIANTS: Variant[] = [
  { immutable: true, arch: "amd64" },
  { immutable: false, arch: "amd64" },
  { immutable: true, arch: "arm64" },
  { immutable: false, arch: "arm64" },
];

interface Case {
  stepId: string;
  variant: Variant;
  plan: PlanStep[];
  /** Why the case cannot run in this setup (then it is skipped, saying so). */
  blocked?: string;
}

const artifactOf = (s: PlanStep): string | undefined =>
  s.kind === "fetchArtifact" || s.kind === "installSysext" ? (s.params.artifact as { url: string }).url : undefined;

/** Picks per case a variant such that no other node downloads, before its own failing step, an artifact a case corrupts. */
function assignVariants(catalog: ArtifactCatalog, stepIds: string[]): Map<string, Variant> {
  const plans = new Map(VARIANTS.map((v) => [v, planFor({ ...v, catalog })]));
  const fetchedBefore = (v: Variant, stepId: string) => {
    const plan = plans.get(v)!;
    const upTo = plan.findIndex((s) => s.stepId === stepId);
    return new Set(plan.slice(0, upTo).flatMap((s) => artifactOf(s) ?? []));
  };
  const corrupted = (v: Variant, stepId: string) => artifactOf(plans.get(v)!.find((s) => s.stepId === stepId)!);
  const assigned = new Map<string, Variant>();
  const compatible = (stepId: string, v: Variant) =>
    [...assigned].every(([other, ov]) => {
      const mine = corrupted(v, stepId);
      const theirs = corrupted(ov, other);
      return (mine === undefined || !fetchedBefore(ov, other).has(mine)) && (theirs === undefined || !fetchedBefore(v, stepId).has(theirs));
    });
  // Cases that corrupt nothing first, on the default variant; then the artifact cases wherever they fit.
  const order = [...stepIds].sort((a, b) => Number(corrupted(VARIANTS[0]!, a) !== undefined) - Number(corrupted(VARIANTS[0]!, b) !== undefined));
  for (const stepId of order) {
    const v = VARIANTS.find((candidate) => compatible(stepId, candidate));
    if (!v) throw new Error(`no variant isolates the failure at ${stepId}`);
    assigned.set(stepId, v);
  }
  return assigned;
}

/** Artifacts with distinct URLs: enough to build the plans, pick variants and name the cases before the stack runs. */
const SHAPE = (name: string) => ({ url: `https://mirror.invalid/${name}`, sha256: "0".repeat(64) });
const byArch = (name: string) => ({ amd64: SHAPE(`${name}-amd64`), arm64: SHAPE(`${name}-arm64`) });
const SHAPE_CATALOG: ArtifactCatalog = {
  containerd: byArch("containerd.tgz"),
  kubernetes: { [KUBERNETES_VERSION]: byArch("kubelet") },
  cniPlugins: byArch("cni.tgz"),
  runc: byArch("runc"),
  sysext: { containerd: byArch("containerd.raw"), kubernetes: { [KUBERNETES_VERSION]: byArch("kubernetes.raw") } },
};

function planCases(catalog: ArtifactCatalog): Case[] {
  const stepIds = planFor({ ...VARIANTS[0]!, catalog }).map((s) => s.stepId);
  const variants = assignVariants(catalog, stepIds);
  return stepIds.map((stepId) => {
    const variant = variants.get(stepId)!;
    const plan = planFor({ ...variant, catalog });
    const step = plan.find((s) => s.stepId === stepId)!;
    // A step that only fails by timing out must give up on the node before the saga stops waiting for it, or the
    // agent is still busy when the reset arrives and the saga removes the mailbox first.
    // The service scales the node's wait with the saga's step timeout (onboard_sendStep), as here.
    const sagaWaitsMs = step.timeoutMs * (SANDBOX_TIMING.stepTimeoutScale ?? 1);
    const waitSeconds = step.kind === "waitFor" ? Math.max(1, Math.floor((Number(step.params.timeoutSeconds) * sagaWaitsMs) / step.timeoutMs)) : 0;
    const blocked =
      waitSeconds > 60
        ? `the node waits ${waitSeconds} s for a certificate that never comes before it gives up (the saga, ${sagaWaitsMs / 1000} s) at SAGA_TIMING.stepTimeoutScale ${SANDBOX_TIMING.stepTimeoutScale}: too slow for this suite`
        : undefined;
    return { stepId, variant, plan, ...(blocked ? { blocked } : {}) };
  });
}

const CASES = planCases(SHAPE_CATALOG);

let stack: Stack;
let fleet: Fleet | undefined;
let cases: Case[] = [];
const outcomes = new Map<string, NodeOutcome>();
const afterRun = new Map<string, TreeSnapshot>();

beforeAll(async () => {
  ({ stack } = await startE2eStack());
  cases = planCases(stack.artifacts.catalog);
  const runnable = cases.filter((c) => !c.blocked);
  const specs: NodeSpec[] = runnable.map((c, i) => {
    const failure = failureFor(c.stepId, c.plan, stack.artifacts);
    if (failure.artifact) stack.artifacts.corrupt(failure.artifact);
    return { name: `fail-${c.stepId}`, ...c.variant, index: i + 1, failure };
  });
  const { enrolmentUrl } = await stack.createToken({ maxUses: specs.length });
  fleet = await startFleet({ stack, enrolmentUrl, hostSide: sandboxHostSide, specs });
  const results = await fleet.settle(150_000);
  // A failed node's queue is deleted; its agent notices and ends by itself (bounded wait).
  for (let i = 0; i < 300 && results.some((r) => r.node.endedWithoutMailbox === undefined); i++) await new Promise((r) => setTimeout(r, 100));
  // Let each agent finish what it was doing (the reset) before its root is compared.
  await fleet.stop();
  for (const [i, r] of results.entries()) {
    outcomes.set(runnable[i]!.stepId, r);
    afterRun.set(runnable[i]!.stepId, await treeSnapshot(r.node.root));
  }
}, 240_000);

afterAll(async () => {
  await fleet?.stop({ removeRoots: true });
  await stack?.close();
});

describe("a failure at each node step: node Failed, agent reset, emulators clean", () => {
  it("covers every step of the plan, the same cases with the mirror's real catalog", () => {
    expect(cases.map((c) => [c.stepId, c.variant])).toEqual(CASES.map((c) => [c.stepId, c.variant]));
    expect(CASES.map((c) => c.stepId)).toEqual(planFor({ ...VARIANTS[0]!, catalog: stack.artifacts.catalog }).map((s) => s.stepId));
  });

  for (const c of CASES.filter((x) => x.blocked)) it.skip(`failure at ${c.stepId}: not exercised, ${c.blocked}`, () => undefined);

  it.each(CASES.filter((x) => !x.blocked).map((x) => x.stepId))("fails cleanly at %s", async (stepId) => {
    const c = cases.find((x) => x.stepId === stepId)!;
    const outcome = outcomes.get(c.stepId)!;
    const { node } = outcome;
    const label = `failure at ${c.stepId} (${c.variant.immutable ? "flatcar" : "ubuntu"}/${c.variant.arch})`;
    expect(node.error, label).toBeUndefined();
    expect(outcome.status, label).toBe("Failed");
    expect(node.endedWithoutMailbox, label).toMatch(/Failed/);
    const output = outcome.saga!.output as { error: { code: string; message: string }; remaining: string[] };
    expect(output.error.code, label).toBe("NodeStepFailed");
    expect(output.error.message, label).toMatch(new RegExp(`^runNodeSteps \\(${c.stepId}\\): step ${c.stepId} failed after \\d attempt\\(s\\)`));
    expect(output.remaining, label).toEqual([]);

    // The agent ran the steps up to the failing one, then the reset, and its root is what it was before the plan.
    const steps = stepsOf(node);
    const failingIndex = c.plan.findIndex((s) => s.stepId === c.stepId);
    expect(
      steps.filter((s) => s.endsWith(" succeeded") && !s.startsWith("reset#")).map((s) => s.split("#")[0]),
      label,
    ).toEqual(c.plan.slice(0, failingIndex).map((s) => s.stepId));
    expect(
      steps.some((s) => s.startsWith(`${c.stepId}#`) && !s.endsWith(" succeeded")),
      label,
    ).toBe(true);
    expect(steps.at(-1), label).toBe("reset#1 succeeded");
    expect(treeDiff(node.prePlan!, afterRun.get(c.stepId)!), label).toEqual([]);
    expect(node.host.activeUnits(), label).toEqual([]);
    expect(node.host.enabledUnits(), label).toEqual([]);

    // Nothing made for this node is left anywhere.
    expect(objectsOf(stack, node), label).toEqual({ machines: [], roleAssignments: [], queues: [], bootstrapSecrets: [], kubeNodes: [] });
    const view = await stack.admin("GET", `/api/manage/nodes/${node.nodeId!}`);
    expect(view.json, label).toMatchObject({ status: "Failed", lastError: { code: "NodeStepFailed" } });
  });

  it("leaves the emulators clean once every case has failed", () => {
    expect(stack.arm.inspect.machines()).toEqual([]);
    expect(stack.arm.inspect.roleAssignments()).toEqual([]);
    expect(nodeQueues(stack)).toEqual([]);
    const kube = stack.kube.inspect();
    expect(kube.nodes).toEqual([]);
    expect(kube.secrets.filter((s) => s.type === "bootstrap.kubernetes.io/token")).toEqual([]);
  });
});
