import { describe, expect, it } from "vitest";
import { ActionType, leafSignature, sameJson, sameLeaf, type LeafAction } from "./wire.js";

const activity = (input: unknown, extra: Partial<LeafAction> = {}): LeafAction => ({ actionType: ActionType.CallActivity, functionName: "f", input, ...extra });

describe("replay identity of a leaf (the determinism check's comparison)", () => {
  const values: unknown[] = [
    null,
    undefined,
    0,
    -0,
    1,
    NaN,
    "1",
    "",
    true,
    false,
    [],
    {},
    [1, 2],
    [2, 1],
    [1, undefined],
    [1, null],
    { a: 1, b: 2 },
    { b: 2, a: 1 },
    { a: 1, b: undefined },
    { a: 1 },
    { a: { b: [1, { c: "x" }] } },
    { a: { b: [1, { c: "y" }] } },
    new Date(0),
    "1970-01-01T00:00:00.000Z",
    { toJSON: () => "1970-01-01T00:00:00.000Z" },
  ];

  it("treats two values as the same exactly when JSON.stringify writes the same text", () => {
    for (const a of values) for (const b of values) expect([a, b, sameJson(a, b)]).toEqual([a, b, JSON.stringify([a]) === JSON.stringify([b])]);
  });

  it("matches leafSignature equality on every field of a leaf", () => {
    const leaves: LeafAction[] = [
      activity({ id: 1 }),
      activity({ id: 2 }),
      activity({ id: 1 }, { functionName: "g" }),
      activity({ id: 1 }, { actionType: ActionType.CallActivityWithRetry, retryOptions: { firstRetryIntervalInMilliseconds: 1, maxNumberOfAttempts: 2 } }),
      activity({ id: 1 }, { actionType: ActionType.CallActivityWithRetry, retryOptions: { firstRetryIntervalInMilliseconds: 1, maxNumberOfAttempts: 3 } }),
      activity({ id: 1 }, { isCanceled: true }),
      activity(undefined),
      activity(null),
      { actionType: ActionType.CreateTimer, fireAt: "2030-01-01T00:00:00.000Z" },
      { actionType: ActionType.CreateTimer, fireAt: "2030-01-01T00:00:01.000Z" },
      { actionType: ActionType.WaitForExternalEvent, externalEventName: "Go" },
      { actionType: ActionType.CallSubOrchestrator, functionName: "f", instanceId: "a" },
    ];
    for (const a of leaves) for (const b of leaves) expect(sameLeaf(a, b)).toBe(leafSignature(a) === leafSignature(b));
  });
});
