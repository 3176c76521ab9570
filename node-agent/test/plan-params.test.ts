import { describe, expect, it } from "vitest";
import { MessageSchemaError } from "../../contract/errors.js";
import { StepParamsSchemas } from "../../contract/step-params.js";
import type { ArtifactCatalog } from "../../orchestrations/node-plan/node-plan.js";
import { sign, testPlan, verify } from "./support-host/plan.js";

const pin = (name: string) => ({ url: `https://mirror.example.net/flexnode/${name}`, sha256: Buffer.from(name.padEnd(32, ".")).toString("hex").slice(0, 64) });
const both = (name: string) => ({ amd64: pin(`amd64/${name}`), arm64: pin(`arm64/${name}`) });
const catalog: ArtifactCatalog = {
  containerd: both("containerd.tar.gz"),
  kubernetes: { "1.31.2": both("kubelet") },
  cniPlugins: both("cni.tgz"),
  runc: both("runc"),
  sysext: { containerd: both("containerd.raw"), kubernetes: { "1.31.2": both("kubernetes.raw") } },
};

describe("the params buildNodePlan sends", () => {
  describe.each([
    { immutable: false, arch: "amd64" as const },
    { immutable: false, arch: "arm64" as const },
    { immutable: true, arch: "amd64" as const },
    { immutable: true, arch: "arm64" as const },
  ])("immutable: $immutable, $arch", ({ immutable, arch }) => {
    const plan = testPlan({ immutable, arch, catalog, apiServer: "https://cluster-1.hcp.westeurope.azmk8s.io:443" });

    it("parse with every step's params schema, unchanged", () => {
      for (const step of plan) {
        const parsed = StepParamsSchemas[step.kind].safeParse(step.params);
        expect(parsed.error?.issues, step.stepId).toBeUndefined();
        expect(parsed.data, step.stepId).toEqual(step.params);
      }
    });

    it("verify as signed envelopes with the params schemas", () => {
      for (const step of plan) expect(verify(sign(step)).params).toEqual(step.params);
    });

    it("never name a path under /usr", () => {
      const paths = JSON.stringify(plan.map((s) => s.params)).match(/"(path|destination|dropIn|persistFile|directory|file)":"[^"]*"/g) ?? [];
      expect(paths.length).toBeGreaterThan(5);
      for (const p of paths) expect(p).not.toMatch(/:"\/usr/);
    });
  });

  it("the reset the saga sends parses", () => {
    expect(StepParamsSchemas.reset.parse({ scope: "all" })).toEqual({ scope: "all" });
    expect(StepParamsSchemas.reset.parse({})).toEqual({});
  });

  it("a signed envelope whose params break the schema is refused at verification, naming the field", () => {
    const plan = testPlan({ immutable: true, catalog, apiServer: "https://cluster-1.example:443" });
    const files = plan.find((s) => s.kind === "writeFiles")!;
    const bad = { ...files, params: { files: [{ path: "/usr/bin/kubelet", mode: "0755", content: "x" }] } };
    expect(() => verify(sign(bad))).toThrow(MessageSchemaError);
    expect(() => verify(sign(bad))).toThrow(/\/params\/files\/0\/path: must not be under \/usr/);
  });

  it.each([
    ["writeFiles", { files: [{ path: "/etc/x", mode: "0644", content: "x", extra: 1 }] }],
    ["fetchArtifact", { artifact: { url: "http://mirror/x", sha256: "a".repeat(64) }, destination: "/opt/x" }],
    ["fetchArtifact", { artifact: { url: "https://mirror/x", sha256: "A".repeat(64) }, destination: "/opt/x" }],
    ["installSysext", { name: "x", artifact: { url: "https://mirror/x", sha256: "a".repeat(64) }, directory: "/usr/lib/extensions" }],
    ["fetchSecret", { secretRef: "r", path: "/root/.kube/config" }],
    ["reset", { scope: "everything" }],
    ["preflight", { checks: ["root", "root"] }],
    ["preflight", { checks: ["teleport"] }],
  ] as const)("refuses %s params %j", (kind, params) => {
    expect(StepParamsSchemas[kind].safeParse(params).success).toBe(false);
  });
});
