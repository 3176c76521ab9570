/**
 * The admin API as the CLI knows it: read from the OpenAPI document the service itself serves, generated from the same
 * route definitions (functions/openapi.ts). Every command names an operationId; its method, path, parameters and
 * body fields come from the document, so a route that changes changes the command with it, and a route without a
 * command fails the CLI's tests.
 */
// Loading the app's modules defines every route (registration happens only when registerApp is called).
import "../functions/register-app.js";
import { openApiDocument } from "../functions/openapi.js";

export interface Parameter {
  name: string;
  in: "path" | "query";
  required: boolean;
  description?: string;
  type?: string;
  enum?: string[];
}

export interface BodyField {
  name: string;
  required: boolean;
  type?: string;
  description?: string;
}

export interface Operation {
  operationId: string;
  method: string;
  /** e.g. /api/manage/nodes/{nodeId} */
  path: string;
  summary: string;
  access: "reader" | "admin";
  parameters: Parameter[];
  body?: { fields: BodyField[] };
}

interface JsonSchema {
  type?: string | string[];
  enum?: string[];
  description?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  anyOf?: JsonSchema[];
}

type Doc = ReturnType<typeof openApiDocument>;

const typeOf = (s: JsonSchema | undefined): string | undefined => {
  if (!s) return undefined;
  if (Array.isArray(s.type)) return s.type.find((t) => t !== "null");
  return s.type ?? s.anyOf?.map(typeOf).find((t) => t !== undefined && t !== "null");
};

/** The admin operations of the document (those behind App Service authentication), by operationId. */
export function adminOperations(doc: Doc = openApiDocument()): Map<string, Operation> {
  const out = new Map<string, Operation>();
  for (const [path, item] of Object.entries(doc.paths ?? {})) {
    for (const [method, raw] of Object.entries(item as Record<string, unknown>)) {
      const op = raw as {
        operationId: string;
        summary?: string;
        tags?: string[];
        security?: Record<string, unknown>[];
        responses: Record<string, { description: string }>;
        parameters?: { name: string; in: string; required?: boolean; description?: string; schema?: JsonSchema }[];
        requestBody?: { content: Record<string, { schema: JsonSchema }> };
      };
      // The fleet page is for browsers; the CLI speaks JSON.
      if (!op.security?.some((s) => "appServiceAuth" in s) || op.tags?.includes("ui")) continue;
      const bodySchema = op.requestBody?.content["application/json"]?.schema;
      out.set(op.operationId, {
        operationId: op.operationId,
        method: method.toUpperCase(),
        path,
        summary: op.summary ?? "",
        access: /FlexNode\.Admin$/.test(op.responses["403"]?.description ?? "") ? "admin" : "reader",
        parameters: (op.parameters ?? []).map((p) => ({
          name: p.name,
          in: p.in as "path" | "query",
          required: p.required === true,
          description: p.description ?? p.schema?.description,
          type: typeOf(p.schema),
          enum: p.schema?.enum,
        })),
        body: bodySchema && {
          fields: Object.entries(bodySchema.properties ?? {}).map(([name, s]) => ({
            name,
            required: bodySchema.required?.includes(name) ?? false,
            type: typeOf(s),
            description: s.description,
          })),
        },
      });
    }
  }
  return out;
}
