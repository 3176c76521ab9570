/**
 * One definition per HTTP endpoint: method, route, who may call it, and the zod schemas of its parameters, query,
 * body and responses. The same definition parses every request (so bad input is refused before a handler runs and
 * nothing is written) and generates the OpenAPI document (so the document cannot drift from the code).
 */
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from "@azure/functions";
import { type z } from "zod";
import type { NodeRecord } from "../../orchestrations/clients/registry/model.js";
import type { ServiceProvider, Services } from "../../orchestrations/services.js";
import { durableClientInput, durableOf, type Durable } from "../durable-client.js";
import { authenticateNode, refuseRetired, stillCompensating } from "./node-auth.js";
import { authorizeAdmin, type Principal } from "./principal.js";
import { toProblemError } from "./domain-errors.js";
import { fieldErrors, problem, ProblemError } from "./problem.js";

export const MAX_BODY_BYTES = 64 * 1024;

export type Access = "anonymous" | "reader" | "admin" | "node";

export interface ResponseSpec {
  description: string;
  schema?: z.ZodType;
  headers?: Record<string, string>;
  /** Media types other than JSON (the fleet page's HTML, script and style sheet); the body is text. */
  contentTypes?: string[];
}

export interface RouteSpec<P extends z.ZodType = z.ZodType, Q extends z.ZodType = z.ZodType, B extends z.ZodType = z.ZodType> {
  /** Function name (unique in the app). */
  name: string;
  method: "GET" | "POST" | "PUT" | "DELETE";
  /** Functions route template without the `api/` prefix, e.g. `manage/pools/{pool}`; also the OpenAPI path. */
  route: string;
  summary: string;
  tag: string;
  access: Access;
  params?: P;
  query?: Q;
  body?: B;
  responses: Record<number, ResponseSpec>;
  /**
   * Node routes only: a retired node (Failed, rejected, Offboarded) may still call this one. Every other node route
   * refuses a retired node's key, so a key left on a dead or decommissioned machine opens nothing new.
   * `while-compensating`: a Failed node whose compensation has not yet removed its mailbox (stillCompensating), which
   * the compensation needs the agent to reach for the reset.
   */
  openToRetiredNodes?: true | "while-compensating";
}

export interface RouteInput<P, Q, B> {
  request: HttpRequest;
  context: InvocationContext;
  params: P;
  query: Q;
  body: B;
  /** The caller: an admin for reader/admin routes, the node for node routes. */
  principal: Principal;
  /** The calling node, for node routes (authenticated by its request signature). */
  node: NodeRecord | undefined;
  /** The service's clients (built once per process by the composition root). */
  services: Services;
  /** The body exactly as received (what a request signature's content digest covers). */
  bytes: Uint8Array;
}

/** Every route defined in this process, in definition order (the OpenAPI document reads it). */
export const ROUTES: RouteSpec[] = [];

export function defineRoute<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType>(spec: RouteSpec<P, Q, B>): RouteSpec<P, Q, B> {
  ROUTES.push(spec as unknown as RouteSpec);
  return spec;
}

type Handler<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType, Extra> = (
  input: RouteInput<z.output<P>, z.output<Q>, z.output<B>> & Extra,
) => Promise<HttpResponseInit>;

const ANONYMOUS: Principal = { id: "anonymous", name: "anonymous", roles: [] };

/** Registers a plain HTTP function for `spec`. */
export function httpRoute<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType>(
  spec: RouteSpec<P, Q, B>,
  services: ServiceProvider,
  handler: Handler<P, Q, B, object>,
): void {
  app.http(spec.name, {
    route: spec.route,
    methods: [spec.method],
    authLevel: "anonymous",
    handler: (request, context) => run(spec, services, request, context, (input) => handler(input)),
  });
}

/**
 * Registers an anonymous HTTP function that needs none of the service's clients (the probe, the API document): it
 * answers even when the settings cannot build them.
 */
export function standaloneRoute(spec: RouteSpec, handler: (input: { request: HttpRequest; context: InvocationContext }) => Promise<HttpResponseInit>): void {
  if (spec.access !== "anonymous" || spec.body || spec.params || spec.query)
    throw new Error(`${spec.name}: a standalone route takes no input and is anonymous`);
  app.http(spec.name, {
    route: spec.route,
    methods: [spec.method],
    authLevel: "anonymous",
    handler: async (request, context) => {
      try {
        return await handler({ request, context });
      } catch (error) {
        context.error(`unhandled error in ${spec.name}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
        return problem(500, "internal", "The service failed to handle the request", {
          detail: `Quote invocation id ${context.invocationId} when reporting this.`,
        });
      }
    },
  });
}

/** Registers an HTTP function with the Durable client bound, for routes that start or inspect sagas. */
export function durableHttpRoute<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType>(
  spec: RouteSpec<P, Q, B>,
  services: ServiceProvider,
  handler: Handler<P, Q, B, Durable>,
): void {
  app.http(spec.name, {
    route: spec.route,
    methods: [spec.method],
    authLevel: "anonymous",
    extraInputs: [durableClientInput],
    handler: (request, context) => run(spec, services, request, context, (input) => handler({ ...input, ...durableOf(context) })),
  });
}

async function run<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType>(
  spec: RouteSpec<P, Q, B>,
  serviceProvider: ServiceProvider,
  request: HttpRequest,
  context: InvocationContext,
  handler: (input: RouteInput<z.output<P>, z.output<Q>, z.output<B>>) => Promise<HttpResponseInit>,
): Promise<HttpResponseInit> {
  try {
    if (spec.access === "admin") refuseCrossSite(request);
    let principal = spec.access === "reader" || spec.access === "admin" ? authorizeAdmin(request, spec.access) : ANONYMOUS;
    // The bytes are read once: a node's signature covers their digest, and the JSON is parsed from the same bytes.
    const bytes = spec.body || spec.access === "node" ? await readBody(request) : new Uint8Array();
    const services = await serviceProvider();
    let node: NodeRecord | undefined;
    if (spec.access === "node") {
      node = await authenticateNode(services, request, bytes);
      if (spec.openToRetiredNodes !== true && !(spec.openToRetiredNodes === "while-compensating" && stillCompensating(node))) refuseRetired(node);
      principal = { id: node.nodeId, name: `node:${node.nodeId}`, roles: [] };
    }
    const params = parsePart(spec.params, request.params, "path parameters", "/params");
    const query = parsePart(spec.query, Object.fromEntries(request.query.entries()), "query", "/query");
    const body = spec.body ? parsePart(spec.body, parseJson(request, bytes), "body", "") : (undefined as z.output<B>);
    return await handler({ request, context, params, query, body, principal, node, services, bytes });
  } catch (error) {
    const known = toProblemError(error);
    if (known) return known.toResponse();
    // Unexpected: log the detail for operators, tell the caller nothing about internals.
    context.error(`unhandled error in ${spec.name}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    return problem(500, "internal", "The service failed to handle the request", { detail: `Quote invocation id ${context.invocationId} when reporting this.` });
  }
}

/**
 * In Azure the fleet page signs in with App Service authentication's session cookie, which a browser also attaches
 * to a form another site posts here: approve, reject, decommission and the token routes take no body, so no content
 * type stops such a post either. Browsers say where a request comes from (Sec-Fetch-Site); writes from another site
 * are refused. Clients that are not browsers (curl, the CLI) send no such header and are unaffected.
 */
function refuseCrossSite(request: HttpRequest): void {
  const site = request.headers.get("sec-fetch-site");
  if (site === null || site === "same-origin" || site === "none") return;
  throw new ProblemError(403, "cross-site-request", "Admin changes are not accepted from another site", {
    detail: `The browser marked this request Sec-Fetch-Site: ${site}; use the fleet page or an API client.`,
  });
}

function parsePart<S extends z.ZodType>(schema: S | undefined, value: unknown, what: string, prefix: string): z.output<S> {
  if (!schema) return undefined as z.output<S>;
  const result = schema.safeParse(value);
  if (!result.success) {
    throw new ProblemError(what === "body" ? 422 : 400, "validation-failed", `The request ${what} is not valid`, { errors: fieldErrors(result.error, prefix) });
  }
  return result.data;
}

/** Reads the body bytes: 413 over 64 KiB, whether declared up front or found while reading. */
async function readBody(request: HttpRequest): Promise<Uint8Array> {
  const declared = Number(request.headers.get("content-length") ?? "0");
  if (declared > MAX_BODY_BYTES) throw tooLarge();
  const bytes = new Uint8Array(await request.arrayBuffer());
  if (bytes.byteLength > MAX_BODY_BYTES) throw tooLarge();
  return bytes;
}

/** Parses a JSON body: 415 unless the content type is JSON, 400 unless the bytes are UTF-8 JSON. */
function parseJson(request: HttpRequest, bytes: Uint8Array): unknown {
  const type = request.headers.get("content-type") ?? "";
  if (!/^application\/([\w.+-]+\+)?json\s*(;.*)?$/i.test(type)) {
    throw new ProblemError(415, "unsupported-media-type", "The request body must be JSON", {
      detail: `Send Content-Type: application/json (got '${type || "none"}').`,
    });
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new ProblemError(400, "malformed-json", "The request body is not valid UTF-8");
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new ProblemError(400, "malformed-json", "The request body is not valid JSON", { detail: error instanceof Error ? error.message : undefined });
  }
}

const tooLarge = () => new ProblemError(413, "payload-too-large", "The request body is too large", { detail: `At most ${MAX_BODY_BYTES} bytes are accepted.` });

export function json(status: number, body: unknown, headers: Record<string, string> = {}): HttpResponseInit {
  return { status, jsonBody: body, headers: { "cache-control": "no-store", ...headers } };
}
