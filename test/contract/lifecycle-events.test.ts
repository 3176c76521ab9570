/** Lifecycle CloudEvents: ids a replay repeats, attributes per CloudEvents 1.0, and documented schemas that match the code. */
import { existsSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { LIFECYCLE_EVENT_KINDS, lifecycleEvent, lifecycleEventId } from "../../contract/lifecycle-events.js";
import { eventSchemaFiles } from "./event-schemas.js";

const NODE = "fn-0123456789abcdef01234567";

describe("lifecycle events", () => {
  it("derives the id from (node, run, type): the same for a repeat, different for another run or type", () => {
    const id = lifecycleEventId(NODE, "run-1", "ready");
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(lifecycleEventId(NODE, "run-1", "ready")).toBe(id);
    expect(
      new Set([id, lifecycleEventId(NODE, "run-2", "ready"), lifecycleEventId(NODE, "run-1", "failed"), lifecycleEventId("fn-x", "run-1", "ready")]).size,
    ).toBe(4);
  });

  it("builds CloudEvents 1.0 with the required and used optional attributes, and refuses data its schema refuses", () => {
    const e = lifecycleEvent("ready", { run: "r", time: "2026-01-01T00:00:00.000Z", data: { nodeId: NODE, pool: "edge", run: "r" } });
    expect(e).toEqual({
      specversion: "1.0",
      id: lifecycleEventId(NODE, "r", "ready"),
      source: "/flexnode/pools/edge",
      type: "dev.flexnode.node.ready",
      subject: `nodes/${NODE}`,
      time: "2026-01-01T00:00:00.000Z",
      datacontenttype: "application/json",
      dataschema: "https://flexnode.dev/schemas/events/dev.flexnode.node.ready.json",
      data: { nodeId: NODE, pool: "edge", run: "r" },
    });
    expect(() => lifecycleEvent("failed", { run: "r", time: "t", data: { nodeId: NODE, pool: "edge", run: "r" } as never })).toThrow(/code/);
  });

  it("has one committed JSON schema per type in docs/events/, equal to the zod schema's (regenerate: npx tsx test/contract/event-schemas-cli.ts)", () => {
    const files = eventSchemaFiles();
    expect(files).toHaveLength(LIFECYCLE_EVENT_KINDS.length);
    for (const [file, text] of files) {
      expect(existsSync(file), file).toBe(true);
      expect(readFileSync(file, "utf8"), file).toBe(text);
    }
  });
});
