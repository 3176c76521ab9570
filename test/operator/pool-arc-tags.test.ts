/**
 * A pool's Arc tags go on every machine the service creates, beside its own three (managed-by, flexnode-node,
 * flexnode-pool). Tags ARM would refuse fail every node's machine PUT, so pool creation refuses them, naming the field:
 * ARM's limits (50 per resource, names without < > % & \ ? /, 512 and 256 characters) and the service's own names in
 * any case, since ARM reads tag names case-insensitively.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ARC_RG, startApp, type TestApp, useStandInSaga } from "../function-app/index.js";

useStandInSaga();

let app: TestApp;
beforeAll(async () => {
  app = await startApp();
});
afterAll(async () => {
  await app.close();
});

const withTags = (tags: Record<string, string>) => ({ arc: { resourceGroupId: ARC_RG, location: "eastus", tags } });
const errorsOf = (res: { json: unknown }) => (res.json as { errors: { path: string; message: string }[] }).errors;

describe("pool Arc tags", () => {
  it("refuses tags ARM would refuse on the machine PUT, naming the field, and stores nothing", async () => {
    const before = await app.snapshot();
    const cases: [Record<string, string>, string, RegExp][] = [
      [{ "team/owner": "x" }, "/arc/tags/team~1owner", /< > % & \\ \? \//],
      [{ "50%": "x" }, "/arc/tags/50%", /ARM refuses tag names/],
      [{ ["n".repeat(513)]: "x" }, `/arc/tags/${"n".repeat(513)}`, /512/],
      [{ env: "v".repeat(257) }, "/arc/tags/env", /256/],
      [{ "Managed-By": "me" }, "/arc/tags/Managed-By", /the service sets on its machines/],
      [{ Env: "a", env: "b" }, "/arc/tags/env", /same tag to ARM/],
      [
        Object.fromEntries(Array.from({ length: 48 }, (_, i) => [`t${i}`, "v"])),
        "/arc/tags",
        /at most 47 tags: ARM allows 50 per resource and the service adds 3/,
      ],
    ];
    for (const [tags, path, message] of cases) {
      const res = await app.createPool("tagged", withTags(tags));
      expect(res.status).toBe(422);
      expect(errorsOf(res)).toEqual([{ path, message: expect.stringMatching(message) }]);
    }
    expect(await app.snapshot()).toBe(before);
  });

  it("accepts 47 tags at ARM's limits", async () => {
    const tags = Object.fromEntries(Array.from({ length: 46 }, (_, i) => [`t${i}`, "v"]));
    tags["n".repeat(512)] = "v".repeat(256);
    const res = await app.createPool("full", withTags(tags));
    expect(res.status).toBe(201);
    expect((res.json as { arc: { tags: Record<string, string> } }).arc.tags).toEqual(tags);
  });
});
