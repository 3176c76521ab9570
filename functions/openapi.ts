/** `GET /api/openapi.json`: OpenAPI 3.1, generated from the same route definitions and zod schemas the handlers use. */
import { OpenAPIRegistry, OpenApiGeneratorV31 } from "@asteasolutions/zod-to-openapi";
import { z } from "zod";
import { SERVICE_VERSION } from "./health.js";
import { defineRoute, json, ROUTES, standaloneRoute, type RouteSpec } from "./http/route.js";

const Problem = z.object({
  type: z.url(),
  title: z.string(),
  status: z.int(),
  detail: z.string().optional(),
  errors: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
});

export function openApiDocument(routes: readonly RouteSpec[] = ROUTES): ReturnType<OpenApiGeneratorV31["generateDocument"]> {
  const registry = new OpenAPIRegistry();
  registry.registerComponent("securitySchemes", "appServiceAuth", {
    type: "oauth2",
    description: "Entra ID through App Service authentication; app roles FlexNode.Admin (writes) and FlexNode.Reader (reads)",
    flows: { implicit: { authorizationUrl: "https://login.microsoftonline.com/common/oauth2/v2.0/authorize", scopes: {} } },
  });
  registry.registerComponent("securitySchemes", "nodeSignature", {
    type: "apiKey",
    in: "header",
    name: "Signature",
    description: "RFC 9421 HTTP Message Signature by the node's Ed25519 key",
  });
  for (const r of routes) {
    const responses: Record<
      number,
      { description: string; content?: Record<string, { schema: z.ZodType }>; headers?: Record<string, { description: string; schema: { type: "string" } }> }
    > = {};
    for (const [status, spec] of Object.entries(r.responses)) {
      const code = Number(status);
      const headers =
        spec.headers && Object.fromEntries(Object.entries(spec.headers).map(([h, d]) => [h, { description: d, schema: { type: "string" as const } }]));
      responses[code] =
        code === 204
          ? { description: spec.description }
          : spec.contentTypes
            ? { description: spec.description, content: Object.fromEntries(spec.contentTypes.map((t) => [t, { schema: z.string() }])) }
            : spec.schema
              ? { description: spec.description, content: { "application/json": { schema: spec.schema } }, ...(headers ? { headers } : {}) }
              : { description: spec.description, content: { "application/problem+json": { schema: Problem } } };
    }
    responses[400] ??= { description: "Malformed request", content: { "application/problem+json": { schema: Problem } } };
    if (r.body) {
      responses[413] ??= { description: "Body over 64 KiB", content: { "application/problem+json": { schema: Problem } } };
      responses[415] ??= { description: "Body is not JSON", content: { "application/problem+json": { schema: Problem } } };
      responses[422] ??= { description: "Body fails validation; `errors` names each field", content: { "application/problem+json": { schema: Problem } } };
    }
    if (r.access === "reader" || r.access === "admin") {
      responses[401] ??= { description: "Not signed in", content: { "application/problem+json": { schema: Problem } } };
      responses[403] ??= {
        description: `Lacks ${r.access === "admin" ? "FlexNode.Admin" : "FlexNode.Reader"}`,
        content: { "application/problem+json": { schema: Problem } },
      };
    }
    registry.registerPath({
      method: r.method.toLowerCase() as "get" | "post" | "put" | "delete",
      path: `/api/${r.route}`,
      operationId: r.name,
      summary: r.summary,
      tags: [r.tag],
      security: r.access === "reader" || r.access === "admin" ? [{ appServiceAuth: [] }] : r.access === "node" ? [{ nodeSignature: [] }] : [],
      request: {
        params: r.params as z.ZodObject | undefined,
        query: r.query as z.ZodObject | undefined,
        body: r.body ? { required: true, content: { "application/json": { schema: r.body } } } : undefined,
      },
      responses,
    });
  }
  return new OpenApiGeneratorV31(registry.definitions).generateDocument({
    openapi: "3.1.0",
    info: {
      title: "flexnode-onboarding",
      version: SERVICE_VERSION,
      description: "Enrol Linux machines outside Azure as AKS nodes with an Arc machine resource.",
    },
  });
}

const route = defineRoute({
  name: "openapi",
  method: "GET",
  route: "openapi.json",
  summary: "This document",
  tag: "meta",
  access: "anonymous",
  responses: { 200: { description: "OpenAPI 3.1 document" } },
});
export function registerOpenApiRoute(): void {
  standaloneRoute(route, () => Promise.resolve(json(200, openApiDocument(), { "cache-control": "public, max-age=300" })));
}
