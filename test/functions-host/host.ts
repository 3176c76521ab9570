/**
 * The Functions host stand-in: invokes registered handlers through the library's own ProgrammingModel and
 * InvocationModel (the path the real worker takes), so RPC typed data becomes HttpRequest / trigger values,
 * extra inputs are bound, and results come back as the RPC response the host would receive.
 */
import { randomUUID } from "node:crypto";
import {
  functionsCore,
  type CoreInvocationContext,
  type FunctionRegistry,
  type LogRecord,
  type RegisteredFunction,
  type RpcBindingInfo,
  type RpcInvocationResponse,
  type RpcTypedData,
} from "./core.js";
import { compileRoute, matchRoute, type CompiledRoute } from "./routes.js";

/** Supplies the value of an input binding the host would resolve (for example the durable client's binding data). */
export type InputBindingProvider = (functionName: string, binding: RpcBindingInfo) => unknown;

export interface InvokeOptions {
  triggerMetadata?: Record<string, unknown>;
  /** Values for extra input bindings by binding name; providers fill the rest. */
  extraInputs?: Record<string, unknown>;
  retryContext?: { retryCount: number; maxRetryCount: number };
  invocationId?: string;
}

export interface InvocationResult {
  invocationId: string;
  response: RpcInvocationResponse;
  /** The decoded `$return` value (JSON parsed where the worker sent JSON). */
  returnValue: unknown;
  /** Decoded extra outputs by binding name. */
  outputs: Record<string, unknown>;
  logs: LogRecord[];
}

export class InvocationError extends Error {
  constructor(
    readonly functionName: string,
    override readonly cause: unknown,
    readonly logs: LogRecord[],
  ) {
    super(`function "${functionName}" failed: ${cause instanceof Error ? cause.message : String(cause)}`);
    this.name = "InvocationError";
  }
}

export interface HttpCall {
  method?: string;
  /** Absolute URL, or a path such as `/api/nodes/n1?x=1` resolved against the host's base URL. */
  url?: string;
  headers?: Record<string, string>;
  /** Route parameters; filled from the route template when omitted and `url` is given. */
  params?: Record<string, string>;
  body?: string | Uint8Array | object;
}

export interface HttpResult {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** Parsed body when the response is JSON (`application/json` or `application/*+json`). */
  json: unknown;
  logs: LogRecord[];
}

export interface FunctionsHostOptions {
  registry?: FunctionRegistry;
  baseUrl?: string;
  routePrefix?: string;
  /**
   * Function keys. Core Tools do not enforce keys locally, so neither does the stand-in unless keys are given here;
   * then non-anonymous functions need `x-functions-key` or `?code=` as in Azure.
   */
  keys?: { function?: string[]; master?: string };
  /**
   * The host's request body limit (FUNCTIONS_REQUEST_BODY_SIZE_LIMIT): larger bodies are answered 413 by the host
   * before any function runs. Default: that setting from the environment, else what infra/ deploys.
   */
  requestBodySizeLimit?: number;
}

/**
 * FUNCTIONS_REQUEST_BODY_SIZE_LIMIT as infra/modules/function-app.bicep sets it (test/infra/contract.test.ts holds
 * the two equal). The host's own default is 100 MB; the stand-in plays the deployed app.
 */
export const DEPLOYED_REQUEST_BODY_SIZE_LIMIT = 1_048_576;

function requestBodySizeLimitOfEnv(): number {
  const raw = process.env.FUNCTIONS_REQUEST_BODY_SIZE_LIMIT;
  return raw && /^\d+$/.test(raw) ? Number(raw) : DEPLOYED_REQUEST_BODY_SIZE_LIMIT;
}

const decoder = new TextDecoder();

export function decodeTypedData(data: RpcTypedData | null | undefined): unknown {
  if (data === null || data === undefined) return undefined;
  if (data.json !== undefined) return JSON.parse(data.json);
  if (data.string !== undefined) return data.string;
  if (data.bytes !== undefined) return Buffer.from(data.bytes);
  if (data.int !== undefined) return data.int;
  if (data.double !== undefined) return data.double;
  if (data.http !== undefined) return data.http;
  return undefined;
}

export class FunctionsHost {
  readonly registry: FunctionRegistry;
  readonly baseUrl: string;
  readonly routePrefix: string;
  private readonly providers = new Map<string, InputBindingProvider>();
  private readonly keys: FunctionsHostOptions["keys"];
  private routeCache = new Map<string, CompiledRoute>();
  private readonly requestBodySizeLimit: number | undefined;

  constructor(options: FunctionsHostOptions = {}) {
    this.registry = options.registry ?? functionsCore();
    this.baseUrl = (options.baseUrl ?? "http://localhost:7071").replace(/\/+$/, "");
    this.routePrefix = options.routePrefix ?? "api";
    this.keys = options.keys;
    this.requestBodySizeLimit = options.requestBodySizeLimit;
  }

  /** The request body limit in force: fixed by the options, or read from the environment as the host reads its setting. */
  get maxRequestBodyBytes(): number {
    return this.requestBodySizeLimit ?? requestBodySizeLimitOfEnv();
  }

  /** Resolves every input binding of `type` (for example "durableClient") through `provider`. */
  provideInput(type: string, provider: InputBindingProvider): void {
    this.providers.set(type.toLowerCase(), provider);
  }

  async invoke(name: string, triggerData: RpcTypedData, options: InvokeOptions = {}): Promise<InvocationResult> {
    const fn = this.registry.get(name);
    const model = this.registry.programmingModel;
    if (!model) throw new Error("no programming model registered; was any function registered through @azure/functions?");
    const invocationId = options.invocationId ?? randomUUID();
    const logs: LogRecord[] = [];
    const inputData: { name: string; data: RpcTypedData }[] = [{ name: fn.triggerName, data: triggerData }];
    for (const [bindingName, binding] of Object.entries(fn.metadata.bindings)) {
      if (bindingName === fn.triggerName || binding.direction !== "in") continue;
      const value =
        options.extraInputs && bindingName in options.extraInputs
          ? options.extraInputs[bindingName]
          : this.providers.get(binding.type.toLowerCase())?.(name, { ...binding, name: bindingName });
      if (value !== undefined) inputData.push({ name: bindingName, data: { string: typeof value === "string" ? value : JSON.stringify(value) } });
    }
    // The host sends a string as a string (GrpcMessageConversionExtensions.ToRpc), everything else as JSON; the library
    // then JSON-parses strings too, so a numeric-looking MessageId reaches the function as a number, as in Azure.
    const triggerMetadata: Record<string, RpcTypedData> = {};
    for (const [k, v] of Object.entries(options.triggerMetadata ?? {})) {
      if (v !== undefined) triggerMetadata[k] = typeof v === "string" ? { string: v } : { json: JSON.stringify(v) };
    }
    const coreCtx: CoreInvocationContext = {
      invocationId,
      request: { inputData, triggerMetadata, retryContext: options.retryContext },
      metadata: { name, bindings: fn.metadata.bindings },
      state: "invocation",
      log: (level, category, message) => logs.push({ level, category, message }),
    };
    const invocation = model.getInvocationModel(coreCtx);
    const { context, inputs } = await invocation.getArguments();
    let result: unknown;
    try {
      result = await invocation.invokeFunction(context, inputs, fn.callback);
    } catch (error) {
      throw new InvocationError(name, error, logs);
    }
    const response = await invocation.getResponse(context, result);
    const outputs: Record<string, unknown> = {};
    for (const out of response.outputData ?? []) outputs[out.name] = decodeTypedData(out.data);
    return { invocationId, response, returnValue: decodeTypedData(response.returnValue), outputs, logs };
  }

  /** Finds the HTTP function and route parameters for a request path, as the host router would. */
  matchHttp(method: string, path: string): { fn: RegisteredFunction; params: Record<string, string> } | undefined {
    const prefix = this.routePrefix ? `/${this.routePrefix}` : "";
    if (prefix && !path.toLowerCase().startsWith(prefix.toLowerCase() + "/") && path.toLowerCase() !== prefix.toLowerCase()) return undefined;
    const rest = path.slice(prefix.length);
    const candidates = this.registry
      .byTriggerType("httpTrigger")
      .filter((f) => this.methodsOf(f).includes(method.toUpperCase()))
      .map((fn) => ({ fn, route: this.routeOf(fn) }))
      .sort((a, b) => b.route.literalCount - a.route.literalCount || a.route.segments.length - b.route.segments.length);
    for (const { fn, route } of candidates) {
      const params = matchRoute(route, rest);
      if (params) return { fn, params };
    }
    return undefined;
  }

  /** Invokes an HTTP function by name, as the host would for a request routed to it. */
  async invokeHttp(name: string, call: HttpCall = {}): Promise<HttpResult> {
    const fn = this.registry.get(name);
    const method = (call.method ?? "GET").toUpperCase();
    const url = new URL(call.url ?? `/${this.routePrefix}/${(fn.trigger.route as string | undefined) ?? name}`, this.baseUrl);
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(call.headers ?? {})) headers[k.toLowerCase()] = v;
    let body: RpcTypedData | undefined;
    let size = 0;
    if (call.body !== undefined) {
      if (typeof call.body === "string") body = { string: call.body };
      else if (call.body instanceof Uint8Array) body = { bytes: call.body };
      else {
        body = { string: JSON.stringify(call.body) };
        headers["content-type"] ??= "application/json";
      }
      size = body.bytes?.byteLength ?? Buffer.byteLength(body.string ?? "");
      // A call that says nothing about framing is a client that knows its length (fetch, curl -d, the agent): it sends one.
      if (headers["content-length"] === undefined && headers["transfer-encoding"] === undefined) headers["content-length"] = String(size);
    }
    // The host refuses a body over FUNCTIONS_REQUEST_BODY_SIZE_LIMIT itself, with a bare 413, before any function runs.
    const declared = headers["content-length"];
    if (declared !== undefined && !/^\d+$/.test(declared.trim())) return { status: 400, headers: {}, body: "", json: undefined, logs: [] };
    if (Math.max(size, Number(declared ?? 0)) > this.maxRequestBodyBytes) return { status: 413, headers: {}, body: "", json: undefined, logs: [] };
    // The host fills the body only when Content-Length > 0: a chunked request's body never reaches the function
    // (azure-functions-host#4926).
    if (!(Number(declared ?? 0) > 0)) body = undefined;
    const params = call.params ?? matchRoute(this.routeOf(fn), url.pathname.slice(this.routePrefix.length + 1)) ?? {};
    const denied = this.checkKey(fn, headers, url);
    if (denied) return denied;
    // Repeated query parameters reach the function as one, their values joined with "," (as ASP.NET's query collection does).
    const joined = new Map<string, string>();
    url.searchParams.forEach((v, k) => joined.set(k, joined.has(k) ? `${joined.get(k)},${v}` : v));
    const query: Record<string, string> = Object.fromEntries(joined);
    let result: InvocationResult;
    try {
      result = await this.invoke(name, { http: { method, url: url.href, headers, query, params, body } });
    } catch (error) {
      // The host answers an unhandled function error with a bare 500; the error is only in the logs.
      if (error instanceof InvocationError) return { status: 500, headers: {}, body: "", json: undefined, logs: error.logs };
      throw error;
    }
    return { ...decodeHttpResponse(result.response.returnValue), logs: result.logs };
  }

  /** Routes and invokes a raw request (used by the loopback HTTP server of the sandbox). */
  async handleHttp(call: HttpCall & { url: string }): Promise<HttpResult> {
    const url = new URL(call.url, this.baseUrl);
    const match = this.matchHttp(call.method ?? "GET", url.pathname);
    if (!match) return { status: 404, headers: {}, body: "", json: undefined, logs: [] };
    return this.invokeHttp(match.fn.metadata.name, { ...call, params: match.params });
  }

  private methodsOf(fn: RegisteredFunction): string[] {
    const methods = fn.trigger.methods as string[] | undefined;
    return (methods && methods.length > 0 ? methods : ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]).map((m) => m.toUpperCase());
  }

  private routeOf(fn: RegisteredFunction): CompiledRoute {
    const template = (fn.trigger.route as string | undefined) ?? fn.metadata.name;
    let compiled = this.routeCache.get(template);
    if (!compiled) {
      compiled = compileRoute(template);
      this.routeCache.set(template, compiled);
    }
    return compiled;
  }

  private checkKey(fn: RegisteredFunction, headers: Record<string, string>, url: URL): HttpResult | undefined {
    const level = String(fn.trigger.authLevel ?? "anonymous").toLowerCase();
    if (!this.keys || level === "anonymous") return undefined;
    const presented = headers["x-functions-key"] ?? url.searchParams.get("code") ?? undefined;
    const accepted = level === "admin" ? [this.keys.master] : [...(this.keys.function ?? []), this.keys.master];
    if (presented !== undefined && accepted.includes(presented)) return undefined;
    return { status: 401, headers: {}, body: "", json: undefined, logs: [] };
  }
}

export function decodeHttpResponse(returnValue: RpcTypedData | null | undefined): Omit<HttpResult, "logs"> {
  const http = (returnValue?.http ?? {}) as { statusCode?: string; headers?: Record<string, string>; body?: RpcTypedData };
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(http.headers ?? {})) headers[k.toLowerCase()] = v;
  const raw = http.body?.bytes ?? (http.body?.string !== undefined ? new TextEncoder().encode(http.body.string) : new Uint8Array());
  const body = decoder.decode(raw);
  const isJson = /^application\/([\w.+-]+\+)?json/i.test(headers["content-type"] ?? "");
  return { status: Number(http.statusCode ?? 200), headers, body, json: isJson && body.length > 0 ? JSON.parse(body) : undefined };
}
