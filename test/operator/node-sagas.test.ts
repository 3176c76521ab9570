/**
 * A node's three sagas (`<id>`, `<id>:compensate`, `<id>:offboard`) never run two at once: what starts one asks which
 * of the others still runs. A fake WorkflowClient answers the statuses; the Durable side is covered by the world tests.
 */
import { describe, expect, it } from "vitest";
import type { WorkflowClient, WorkflowStatus } from "../../orchestrations/clients/workflow-client.js";
import { onboardingMustWait, runningSaga } from "../../orchestrations/use-cases/node-sagas.js";
import { OperatorError, refuseWhileFinishing } from "../../orchestrations/use-cases/operator.js";

const NODE = "fn-0123456789abcdef01234567";

function workflows(statuses: Record<string, WorkflowStatus>): Pick<WorkflowClient, "status"> {
  return { status: async (id) => statuses[id] };
}

describe("the node's running sagas", () => {
  it.each([
    [NODE, "Running"],
    [`${NODE}:compensate`, "Running"],
    [`${NODE}:offboard`, "Pending"],
  ] as const)("finds %s %s", async (id, status) => {
    expect(await runningSaga(workflows({ [id]: status }), NODE)).toBe(id);
  });

  it("finds none when every instance has ended (or never ran)", async () => {
    expect(await runningSaga(workflows({ [NODE]: "Completed", [`${NODE}:compensate`]: "Terminated", [`${NODE}:offboard`]: "Failed" }), NODE)).toBeUndefined();
  });
});

describe("a retry or an approval waits while any of the node's sagas runs", () => {
  it("is refused while the node's offboarding runs (a decommission of the Failed node)", async () => {
    const refusal = await refuseWhileFinishing({ workflows: workflows({ [`${NODE}:offboard`]: "Running" }) as WorkflowClient }, NODE).catch((e: unknown) => e);
    expect(refusal).toBeInstanceOf(OperatorError);
    expect((refusal as OperatorError).code).toBe("still-running");
  });
});

describe("a new onboarding (start over, rekey) waits", () => {
  it("while the node is Offboarding, even with no offboarding running (the sweeper resumes it)", async () => {
    expect(await onboardingMustWait({ workflows: workflows({}) }, { nodeId: NODE, status: "Offboarding" })).toMatch(/being offboarded/);
  });

  it.each([NODE, `${NODE}:compensate`, `${NODE}:offboard`])("while %s still runs", async (id) => {
    expect(await onboardingMustWait({ workflows: workflows({ [id]: "Running" }) }, { nodeId: NODE, status: "Failed" })).toMatch(/still finishing/);
  });

  it("not for a saga the caller deals with itself (a rekey stops the old onboarding), nor when all have ended", async () => {
    expect(
      await onboardingMustWait({ workflows: workflows({ [NODE]: "Running" }) }, { nodeId: NODE, status: "Ready" }, { except: "onboarding" }),
    ).toBeUndefined();
    expect(await onboardingMustWait({ workflows: workflows({ [NODE]: "Completed" }) }, { nodeId: NODE, status: "Failed" })).toBeUndefined();
  });
});
