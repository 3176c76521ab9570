import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ConfigError, resolveConfig } from "../src/config.js";
import { scratchRoot, type ScratchRoot } from "./support-service/scratch-root.js";

let root: ScratchRoot;
beforeEach(async () => {
  root = await scratchRoot();
});
afterEach(async () => {
  await root.remove();
});

describe("agent.json settings", () => {
  it("archive caps: MiB and entries from agent.json reach the executors as bytes and entries; absent, the defaults apply", async () => {
    expect((await resolveConfig(root.dir, {})).archiveLimits).toBeUndefined();
    await root.write("/etc/flexnode/agent.json", JSON.stringify({ archive: { maxUnpackedMiB: 512, maxEntries: 5000 } }));
    expect((await resolveConfig(root.dir, {})).archiveLimits).toEqual({ maxUnpackedBytes: 512 * 1024 * 1024, maxEntries: 5000 });
    await root.write("/etc/flexnode/agent.json", JSON.stringify({ archive: { maxEntries: 0 } }));
    await expect(resolveConfig(root.dir, {})).rejects.toMatchObject({ constructor: ConfigError, field: "archive.maxEntries" });
  });
});
