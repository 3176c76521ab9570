/** Admin API: enrolment tokens. The secret is shown once, in the create response, and never stored or logged. */
import { z } from "zod";
import { mintToken } from "../orchestrations/use-cases/token-secret.js";
import { nodeLabelBudgetIssues } from "../orchestrations/use-cases/node-label-budget.js";
import { Labels, PoolName, Taints } from "../orchestrations/clients/registry/model.js";
import { publicBaseUrl } from "../orchestrations/settings.js";
import { ProblemError } from "./http/problem.js";
import { defineRoute, httpRoute, json } from "./http/route.js";
import { pageOf, Paging, tokenView, TokenView } from "./http/views.js";
import type { ServiceProvider, Services } from "../orchestrations/services.js";
import type { TokenRecord } from "../orchestrations/clients/registry/model.js";

const TokenId = z.string().regex(/^[0-9a-f]{16}$/, "must be a token id (16 hex digits)");

export const CreateToken = z.strictObject({
  expiresInHours: z
    .int()
    .min(1)
    .max(24 * 30)
    .default(24)
    .describe("Lifetime; at most 30 days"),
  maxUses: z.int().min(1).max(10_000).default(1).describe("1 = single-use"),
  labels: Labels.default({}).describe("Added to the pool's node labels"),
  taints: Taints.default([]).describe("Added to the pool's node taints"),
  approvalRequired: z.boolean().default(false).describe("Nodes enrolled with this token wait for an admin"),
  description: z.string().max(256).optional(),
});

const CreatedToken = TokenView.extend({
  token: z.string().describe("The secret token. Shown only in this response."),
  enrolmentUrl: z.url().describe("What the agent needs: `flexnode-agent enrol --url <this>`"),
  installCommand: z.string(),
});

const create = defineRoute({
  name: "manageTokenCreate",
  method: "POST",
  route: "manage/pools/{pool}/tokens",
  summary: "Create an enrolment token for a pool (the secret is returned once)",
  tag: "tokens",
  access: "admin",
  params: z.strictObject({ pool: PoolName }),
  body: CreateToken,
  responses: {
    201: { description: "Created; store the token now", schema: CreatedToken },
    404: { description: "No such pool" },
    422: {
      description:
        "Body fails validation, or its labels or taints with the pool's exceed what a node may carry (64 labels, 32 taints); `errors` names each field",
    },
  },
});
const list = defineRoute({
  name: "manageTokenList",
  method: "GET",
  route: "manage/tokens",
  summary: "List enrolment tokens (never their secrets)",
  tag: "tokens",
  access: "reader",
  query: Paging.extend({ pool: PoolName.optional() }),
  responses: { 200: { description: "A page of tokens", schema: pageOf(TokenView) } },
});
const get = defineRoute({
  name: "manageTokenGet",
  method: "GET",
  route: "manage/tokens/{tokenId}",
  summary: "Get an enrolment token (never its secret)",
  tag: "tokens",
  access: "reader",
  params: z.strictObject({ tokenId: TokenId }),
  responses: { 200: { description: "The token", schema: TokenView }, 404: { description: "No such token" } },
});
const revoke = defineRoute({
  name: "manageTokenRevoke",
  method: "POST",
  route: "manage/tokens/{tokenId}/revoke",
  summary: "Revoke an enrolment token (idempotent); nodes already enrolled are not affected",
  tag: "tokens",
  access: "admin",
  params: z.strictObject({ tokenId: TokenId }),
  responses: { 200: { description: "Revoked", schema: TokenView }, 404: { description: "No such token" } },
});

const remove = defineRoute({
  name: "manageTokenDelete",
  method: "DELETE",
  route: "manage/tokens/{tokenId}",
  summary: "Revoke and remove an enrolment token; nodes already enrolled with it are not affected",
  tag: "tokens",
  access: "admin",
  params: z.strictObject({ tokenId: TokenId }),
  responses: { 204: { description: "Revoked and removed" }, 404: { description: "No such token" } },
});

/**
 * Mints a token for a pool (404 when the pool does not exist); the secret is returned, never stored. Refused (422,
 * naming the field) when its labels or taints merged with the pool's would not fit on a node: every enrolment with
 * it would fail (use-cases/node-label-budget.ts).
 */
export async function createEnrolmentToken(
  { registry, now, settings }: Pick<Services, "registry" | "now" | "settings">,
  pool: string,
  body: z.output<typeof CreateToken>,
  actor: string,
): Promise<{ record: TokenRecord; token: string; enrolmentUrl: string }> {
  const target = await registry.pools.get(pool);
  if (!target) throw new ProblemError(404, "not-found", "No such pool", { detail: `pool '${pool}' does not exist` });
  const issues = nodeLabelBudgetIssues({ labels: target.nodeLabels, taints: target.nodeTaints }, body);
  if (issues.length > 0)
    throw new ProblemError(422, "validation-failed", "The request body is not valid", {
      errors: issues.map((i) => ({ path: `/${i.field}`, message: i.message })),
    });
  const minted = mintToken();
  const record = await registry.tokens.create(
    {
      tokenId: minted.tokenId,
      pool,
      secretHash: minted.secretHash,
      expiresAt: new Date(now().getTime() + body.expiresInHours * 3600_000).toISOString(),
      maxUses: body.maxUses,
      labels: body.labels,
      taints: body.taints,
      approvalRequired: body.approvalRequired,
      description: body.description,
      createdBy: actor,
    },
    actor,
  );
  // The token travels in the URL fragment: browsers and proxies never send fragments, so it stays out of access logs.
  return { record, token: minted.token, enrolmentUrl: `${publicBaseUrl(settings)}/api/enrol#token=${minted.token}` };
}

export function registerTokenRoutes(services: ServiceProvider): void {
  httpRoute(create, services, async ({ params, body, principal, services }) => {
    const { record, token, enrolmentUrl } = await createEnrolmentToken(services, params.pool, body, principal.name);
    return json(
      201,
      { ...tokenView(record), token, enrolmentUrl, installCommand: `sudo flexnode-agent enrol --url '${enrolmentUrl}'` },
      { location: `/api/manage/tokens/${record.tokenId}` },
    );
  });
  httpRoute(list, services, async ({ query, services: { registry } }) => {
    const page = await registry.tokens.list({ pool: query.pool, maxPageSize: query.pageSize, continuationToken: query.continuationToken });
    return json(200, { items: page.items.map(tokenView), continuationToken: page.continuationToken });
  });
  httpRoute(get, services, async ({ params, services: { registry } }) => {
    const token = await registry.tokens.get(params.tokenId);
    if (!token) throw new ProblemError(404, "not-found", "No such token", { detail: `token '${params.tokenId}' does not exist` });
    return json(200, tokenView(token));
  });
  httpRoute(revoke, services, async ({ params, principal, services: { registry } }) => {
    return json(200, tokenView(await registry.tokens.revoke(params.tokenId, principal.name)));
  });
  httpRoute(remove, services, async ({ params, principal, services: { registry } }) => {
    await registry.tokens.remove(params.tokenId, principal.name);
    return { status: 204, headers: { "cache-control": "no-store" } };
  });
}
