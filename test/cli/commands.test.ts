/** The CLI cannot drift from the API: every admin operation in the OpenAPI document has exactly one command. */
import { describe, expect, it } from "vitest";
import { COMMANDS } from "../../admin-cli/commands.js";
import { adminOperations } from "../../admin-cli/operations.js";
import { buildRequest, parseFlags } from "../../admin-cli/request.js";

describe("flexnode commands and the OpenAPI document", () => {
  it("has one command per admin operation, and no command without one", () => {
    const operations = [...adminOperations().keys()].sort();
    expect(operations.length).toBeGreaterThan(15);
    expect(COMMANDS.map((c) => c.operationId).sort()).toEqual(operations);
    expect(new Set(COMMANDS.map((c) => c.words.join(" "))).size).toBe(COMMANDS.length);
  });

  it("names, as each command's positional argument, a path parameter or body field of its operation", () => {
    const ops = adminOperations();
    for (const c of COMMANDS.filter((x) => x.positional)) {
      const op = ops.get(c.operationId)!;
      const names = [...op.parameters.map((p) => p.name), ...(op.body?.fields.map((f) => f.name) ?? [])];
      expect(names, c.words.join(" ")).toContain(c.positional);
    }
  });

  it("builds requests from the document: path, query flags, typed body flags", () => {
    const ops = adminOperations();
    const list = COMMANDS.find((c) => c.operationId === "manageNodeList")!;
    const { positionals, flags } = parseFlags(["--status", "Failed", "--failure-code=NodeStepFailed", "--page-size", "5"], new Set());
    expect(buildRequest(list, ops.get("manageNodeList")!, positionals, flags)).toEqual({
      method: "GET",
      path: "/api/manage/nodes?status=Failed&failureCode=NodeStepFailed&pageSize=5",
      body: undefined,
    });
    const create = COMMANDS.find((c) => c.operationId === "manageTokenCreate")!;
    const t = parseFlags(["edge", "--max-uses", "3", "--approval-required", "--labels", '{"site":"lyon"}'], new Set(["approval-required"]));
    expect(buildRequest(create, ops.get("manageTokenCreate")!, t.positionals, t.flags)).toEqual({
      method: "POST",
      path: "/api/manage/pools/edge/tokens",
      body: { maxUses: 3, approvalRequired: true, labels: { site: "lyon" } },
    });
  });
});
