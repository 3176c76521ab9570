/**
 * The `flexnode` CLI against the sandbox stack over real HTTP, as an operator runs it: every command, with
 * `--output json` parsed and exit codes checked. A node fails on the Azure side (its mailbox cannot be created), is
 * watched to Failed, retried to Ready, decommissioned and watched to Offboarded.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { run } from "../../admin-cli/main.js";
import { ARC_RG_ID, CLUSTER_ID, DEMO_POOL, sandboxHostSide, startFleet, type Fleet, type Stack } from "../sandbox/index.js";
import { startE2eStack } from "../e2e/support.js";

let stack: Stack;
let fleet: Fleet | undefined;

beforeAll(async () => {
  ({ stack } = await startE2eStack());
}, 60_000);
afterAll(async () => {
  await fleet?.stop({ removeRoots: true });
  await stack?.close();
});

async function flexnode(...argv: string[]): Promise<{ code: number; out: string[]; err: string[]; json: unknown }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await run(argv, { out: (l) => out.push(l), err: (l) => err.push(l), env: { FLEXNODE_URL: stack.url, FLEXNODE_ADMIN_TOKEN: stack.adminToken } });
  const json = argv.includes("json") && out.length === 1 ? (JSON.parse(out[0]!) as unknown) : undefined;
  return { code, out, err, json };
}

describe("flexnode against the sandbox", () => {
  it("manages pools and tokens: create, list, get, update, revoke, delete", async () => {
    const arc = JSON.stringify({ resourceGroupId: ARC_RG_ID, location: "westeurope" });
    const created = await flexnode("pools", "create", "lyon", "--cluster-resource-id", CLUSTER_ID, "--arc", arc, "--max-in-flight", "5", "--output", "json");
    expect([created.code, created.json]).toMatchObject([0, { name: "lyon", maxInFlight: 5, inFlight: 0 }]);
    expect((await flexnode("pools", "create", "lyon", "--cluster-resource-id", CLUSTER_ID, "--arc", arc)).code).toBe(5);
    const listed = await flexnode("pools", "list", "--output", "json");
    expect((listed.json as { items: { name: string }[] }).items.map((p) => p.name)).toEqual(expect.arrayContaining(["lyon", DEMO_POOL]));
    const table = await flexnode("pools", "list");
    expect(table.out[0]).toMatch(/^POOL\s+IN-FLIGHT\s+WAITING\s+ARC/);
    expect(table.out.some((l) => /^lyon\s+0\/5\s+0\s+create\s+westeurope/.test(l))).toBe(true);
    const body = JSON.stringify({ clusterResourceId: CLUSTER_ID, arc: { resourceGroupId: ARC_RG_ID, location: "westeurope" } });
    const updated = await flexnode("pools", "update", "lyon", "--body", body, "--max-in-flight", "7", "--output", "json");
    expect([updated.code, (updated.json as { maxInFlight: number }).maxInFlight]).toEqual([0, 7]);
    expect(((await flexnode("pools", "get", "lyon", "--output", "json")).json as { maxInFlight: number }).maxInFlight).toBe(7);

    const token = await flexnode("tokens", "create", "lyon", "--max-uses", "2", "--description", "rack 4", "--output", "json");
    const { tokenId, token: secret } = token.json as { tokenId: string; token: string };
    expect([token.code, secret]).toEqual([0, expect.stringMatching(/^fnt\./)]);
    expect(((await flexnode("tokens", "list", "--pool", "lyon", "--output", "json")).json as { items: { tokenId: string }[] }).items).toEqual([
      expect.objectContaining({ tokenId, maxUses: 2, description: "rack 4" }),
    ]);
    expect(((await flexnode("tokens", "get", tokenId, "--output", "json")).json as { uses: number }).uses).toBe(0);
    expect(((await flexnode("tokens", "revoke", tokenId, "--output", "json")).json as { revokedAt?: string }).revokedAt).toBeDefined();
    expect((await flexnode("tokens", "delete", tokenId, "--output", "json")).code).toBe(0);
    expect((await flexnode("tokens", "get", tokenId, "--output", "json")).code).toBe(4);
    expect((await flexnode("pools", "delete", "lyon")).out).toEqual(["done"]);
    expect((await flexnode("pools", "get", "lyon")).code).toBe(4);
  });

  it("watches a node fail on the Azure side, retries it to Ready, decommissions it and watches it Offboarded", async () => {
    // Its mailbox queue cannot be created: openMailbox fails after the saga's retries, and compensation runs.
    const fault = stack.sb.adminFaults.inject({ method: "PUT", path: /^\/?node-fn-/, status: 503, times: 10_000 });
    const { enrolmentUrl } = await stack.createToken({ maxUses: 1 });
    fleet = await startFleet({ stack, enrolmentUrl, hostSide: sandboxHostSide, specs: [{ name: "edge-cli", immutable: true, arch: "amd64", index: 1 }] });
    const nodeId = await enrolledId(fleet);

    const failed = await flexnode("watch", nodeId, "--interval", "0.3", "--timeout", "60");
    expect({ code: failed.code, last: failed.out.at(-1) }).toMatchObject({ code: 10, last: expect.stringMatching(/Failed .*phase failed/) });
    const listed = await flexnode("nodes", "list", "--status", "Failed", "--failure-code", "openMailboxFailed", "--output", "json");
    expect((listed.json as { items: { nodeId: string }[] }).items.map((n) => n.nodeId)).toEqual([nodeId]);
    const shown = await flexnode("nodes", "get", nodeId, "--output", "json");
    expect(shown.json).toMatchObject({ status: "Failed", lastError: { code: "openMailboxFailed" }, progress: { phase: "failed" } });
    const human = await flexnode("nodes", "get", nodeId);
    expect(human.out.join("\n")).toMatch(/timeline[\s\S]*node\.enrol[\s\S]*node\.failed/);
    const fleetView = await flexnode("fleet", "--output", "json");
    expect((fleetView.json as { failures: { lastHour: Record<string, number> } }).failures.lastHour).toMatchObject({ openMailboxFailed: 1 });

    fault.clear();
    const retried = await flexnode("retry", nodeId, "--output", "json");
    expect([retried.code, retried.json]).toEqual([0, { nodeId, status: "Enrolling", operationId: nodeId }]);
    // An agent that saw its node Failed has ended (exit 6); the operator restarts it on the machine.
    await fleet.nodes[0]!.restart();
    const ready = await flexnode("watch", nodeId, "--interval", "0.3", "--timeout", "90");
    expect({ code: ready.code, last: ready.out.at(-1), err: ready.err }).toMatchObject({ code: 0, last: expect.stringMatching(/Ready .*phase done/) });

    for (const refused of ["approve", "reject", "cancel", "retry"]) {
      const r = await flexnode(refused, nodeId, "--output", "json");
      expect([refused, r.code, (JSON.parse(r.err[0]!) as { status: number }).status]).toEqual([refused, 5, 409]);
    }
    const decommissioned = await flexnode("decommission", nodeId, "--output", "json");
    expect([decommissioned.code, decommissioned.json]).toEqual([0, { nodeId, instanceId: `${nodeId}:offboard` }]);
    const gone = await flexnode("watch", nodeId, "--interval", "0.3", "--timeout", "60");
    expect([gone.code, gone.out.at(-1)]).toEqual([0, expect.stringMatching(/Offboarded/)]);
    const op = await flexnode("operations", "get", `${nodeId}:offboard`, "--output", "json");
    expect(op.json).toMatchObject({ operationId: `${nodeId}:offboard`, orchestration: "offboardNode", runtimeStatus: "Completed", phase: "done" });
    const summary = await flexnode("fleet");
    expect(summary.out[0]).toMatch(/^POOL\s+NODES\s+ENROLLING/);
  }, 240_000);

  it("prints a pool's join configuration: raw for people, in JSON for scripts", async () => {
    const ign = await flexnode("join-config", "--pool", DEMO_POOL, "--format", "ignition");
    expect(ign.code).toBe(0);
    expect((JSON.parse(ign.out.join("\n")) as { ignition: { version: string } }).ignition.version).toBe("3.3.0");
    const cloud = await flexnode("join-config", "--pool", DEMO_POOL, "--format", "cloud-init", "--max-uses", "3", "--output", "json");
    expect(cloud.json).toMatchObject({ pool: DEMO_POOL, format: "cloud-init", maxUses: 3, content: expect.stringMatching(/^#cloud-config\n/) });
    expect((await flexnode("join-config", "--format", "shell")).code).toBe(2);
  });

  it("answers with documented exit codes: 2 usage, 3 unauthorized, 4 not found, 6 invalid", async () => {
    expect((await flexnode("nodes", "explode")).code).toBe(2);
    expect((await flexnode("nodes", "get")).code).toBe(2);
    expect((await flexnode("nodes", "list", "--colour", "red")).code).toBe(2);
    const out: string[] = [];
    const denied = await run(["fleet"], { out: (l) => out.push(l), err: (l) => out.push(l), env: { FLEXNODE_URL: stack.url, FLEXNODE_ADMIN_TOKEN: "wrong" } });
    expect(denied).toBe(3);
    expect((await flexnode("nodes", "get", `fn-${"0".repeat(24)}`)).code).toBe(4);
    const invalid = await flexnode("nodes", "list", "--created-since", "yesterday", "--output", "json");
    expect([invalid.code, (JSON.parse(invalid.err[0]!) as { errors: { path: string }[] }).errors[0]!.path]).toEqual([6, "/query/createdSince"]);
    const help = await flexnode("--help");
    expect(help.out.join("\n")).toMatch(/join-config|decommission <nodeId>/);
  });
});

/** The node id once the fleet's agent has enrolled (bounded). */
async function enrolledId(f: Fleet): Promise<string> {
  for (let i = 0; i < 300; i++) {
    const id = f.nodes[0]?.nodeId;
    if (id) return id;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error("the sandbox node did not enrol within 30 s");
}
