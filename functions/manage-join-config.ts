/**
 * Admin API: a pool's join configuration — what a user pastes into their provisioning (cloud-init, Butane, Ignition
 * or a shell script) to install the agent, enrol with a fresh token and start it. Each call mints its own token
 * (single-use unless `maxUses` says otherwise), audited like any token.
 */
import { z } from "zod";
import { PoolName } from "../orchestrations/clients/registry/model.js";
import { catalogFromSettings } from "../orchestrations/node-plan/artifact-catalog.js";
import { JOIN_FORMATS, renderJoinConfig } from "../orchestrations/join-config/join-config.js";
import { NotConfiguredError, publicBaseUrl } from "../orchestrations/settings.js";
import { defineRoute, httpRoute, json } from "./http/route.js";
import { createEnrolmentToken, CreateToken } from "./manage-tokens.js";
import type { ServiceProvider } from "../orchestrations/services.js";

export const JoinConfigRequest = CreateToken.extend({
  format: z.enum(JOIN_FORMATS).describe("cloud-init or shell: hosts with a writable /usr (the executable); butane or ignition: Flatcar (the sysext image)"),
  arch: z.enum(["amd64", "arm64"]).default("amd64"),
  expiresInHours: CreateToken.shape.expiresInHours
    .unwrap()
    .default(2)
    .describe("Lifetime of the token inside; short, since configs are often readable from instance metadata"),
});

const JoinConfig = z.object({
  pool: z.string(),
  format: z.enum(JOIN_FORMATS),
  tokenId: z.string(),
  expiresAt: z.iso.datetime(),
  maxUses: z.int(),
  contentType: z.string(),
  content: z.string().describe("The configuration; it holds the token's secret"),
});

const route = defineRoute({
  name: "managePoolJoinConfig",
  method: "POST",
  route: "manage/pools/{pool}/join-config",
  summary: "Make a join configuration for a pool (cloud-init, butane, ignition or shell) with a fresh enrolment token",
  tag: "pools",
  access: "admin",
  params: z.strictObject({ pool: PoolName }),
  body: JoinConfigRequest,
  responses: {
    201: { description: "Created; the content holds the token's secret", schema: JoinConfig },
    404: { description: "No such pool" },
    503: { description: "ARTIFACT_CATALOG has no agent section (where nodes download the agent)" },
  },
});

export function registerJoinConfigRoute(services: ServiceProvider): void {
  httpRoute(route, services, async ({ params, body, principal, services: svc }) => {
    // Checked before a token is minted: a config that cannot be rendered must not leave a live token behind.
    const catalog = catalogFromSettings(svc.settings.ARTIFACT_CATALOG);
    if (!catalog.agent?.executable[body.arch] || !catalog.agent.sysext[body.arch]) throw new NotConfiguredError(`ARTIFACT_CATALOG.agent for ${body.arch}`);
    const { format, arch, ...tokenBody } = body;
    const { record, token } = await createEnrolmentToken(
      svc,
      params.pool,
      { ...tokenBody, description: tokenBody.description ?? `join-config ${format}` },
      principal.name,
    );
    const rendered = renderJoinConfig({ format, arch, enrolmentUrl: `${publicBaseUrl(svc.settings)}/api/enrol`, token, catalog });
    await svc.registry.audit.write({
      actor: principal.name,
      action: "pool.join-config",
      objectType: "pool",
      objectId: params.pool,
      details: { tokenId: record.tokenId, format, arch },
    });
    return json(201, { pool: params.pool, format, tokenId: record.tokenId, expiresAt: record.expiresAt, maxUses: record.maxUses, ...rendered });
  });
}
