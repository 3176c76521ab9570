/**
 * The artifacts nodes may download, pinned by sha256, per architecture and Kubernetes version. It is configuration
 * (`ARTIFACT_CATALOG`, JSON), not code: operators mirror the release artifacts they trust and publish their digests;
 * the service never invents a digest and a node never runs an unpinned binary.
 */
import { z } from "zod";
import { NotConfiguredError } from "../settings.js";
import type { ArtifactCatalog } from "./node-plan.js";

const Artifact = z.strictObject({ url: z.url({ protocol: /^https$/ }), sha256: z.string().regex(/^[0-9a-f]{64}$/, "must be 64 lowercase hex digits") });
const ByArch = z.record(z.enum(["amd64", "arm64"]), Artifact);
const ByVersion = z.record(z.string().regex(/^\d+\.\d+\.\d+$/), ByArch);

export const ArtifactCatalogSchema: z.ZodType<ArtifactCatalog> = z.strictObject({
  containerd: ByArch,
  kubernetes: ByVersion,
  cniPlugins: ByArch,
  runc: ByArch.optional(),
  sysext: z.strictObject({ containerd: ByArch, kubernetes: ByVersion }),
  agent: z
    .strictObject({ version: z.string().regex(/^\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$/, "must be a version such as 0.1.0"), executable: ByArch, sysext: ByArch })
    .optional(),
});

export function catalogFromSettings(text: string | undefined): ArtifactCatalog {
  if (!text) throw new NotConfiguredError("ARTIFACT_CATALOG");
  return ArtifactCatalogSchema.parse(JSON.parse(text));
}
