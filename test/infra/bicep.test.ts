/**
 * The templates as the real Bicep CLI sees them: every .bicep file under infra/ lints with nothing to say (every
 * analyzer rule is an error in infra/bicepconfig.json, and any warning line fails here too), and the committed
 * compiled templates (infra/main.json, infra/pool.json — what azd and `az deployment` consume) are exactly what the
 * pinned CLI builds from the sources today. Without the CLI this fails in CI and is skipped, saying why, elsewhere.
 */
import { readFile, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it, type TestContext } from "vitest";
import { bicepAvailable, bicepFiles, INFRA, run } from "./bicep.js";

let missing: string | undefined;
beforeAll(async () => {
  const a = await bicepAvailable();
  if (!a.ok) {
    if (process.env.CI) throw new Error(`${a.reason} — CI installs it in .ci/run`);
    missing = a.reason;
  }
});
const needBicep = (ctx: TestContext) => {
  if (missing) ctx.skip(missing);
};

/** Diagnostic lines (warnings, errors, infos) in the CLI's default format. */
const diagnostics = (text: string) => text.split("\n").filter((l) => /:\s*(Warning|Error|Info)\s/.test(l));

describe.concurrent("Bicep CLI", () => {
  it("finds the templates", () => {
    expect(bicepFiles()).toEqual(expect.arrayContaining(["infra/main.bicep", "infra/pool.bicep"]));
  });

  it("lints every .bicep file with zero diagnostics", async (ctx) => {
    needBicep(ctx);
    const result = await run(["lint", "--pattern", "infra/**/*.bicep"]);
    expect(diagnostics(result.stdout + result.stderr)).toEqual([]);
    expect(result.stderr.trim()).toBe("");
    expect(result.code).toBe(0);
  });

  it("builds every .bicep file with zero diagnostics; main and pool byte-for-byte equal to the committed main.json and pool.json", async (ctx) => {
    needBicep(ctx);
    const out = await mkdtemp(join(tmpdir(), "flexnode-bicep-build-"));
    try {
      const result = await run(["build", "--pattern", "infra/**/*.bicep", "--outdir", out]);
      expect(diagnostics(result.stdout + result.stderr)).toEqual([]);
      expect(result.code).toBe(0);
      for (const name of ["main.json", "pool.json"]) {
        const fresh = await readFile(join(out, name), "utf8");
        const committed = await readFile(join(INFRA, name), "utf8").catch(() => "(missing)");
        // A stale compiled template would deploy something other than the sources say.
        expect(committed, `infra/${name} is stale: run \`.tools/bicep/bicep build infra/${name.replace(".json", ".bicep")}\` and commit it`).toBe(fresh);
      }
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });
});
