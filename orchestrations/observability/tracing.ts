/**
 * The onboarding's trace, carried as data. Orchestrator code may not read the ambient trace context (a replay must
 * rebuild the same actions), so the saga holds the W3C `traceparent` of the request that started it in its input and
 * passes that same string to every activity; activities, the node results trigger and the agent's envelopes re-enter
 * the trace from it. With no tracer provider registered every function here is a cheap no-op.
 */
import { context, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Span } from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { TraceparentSchema } from "../../contract/fields.js";

export { SpanKind };

export const TRACER_NAME = "flexnode-onboarding";

/** Explicit, not the global propagator: the trace context must be W3C on the wire whatever else an app registers. */
const w3c = new W3CTraceContextPropagator();

export const tracer = () => trace.getTracer(TRACER_NAME);

/** The active span's context as a `traceparent`, or undefined when nothing is recording (telemetry off). */
export function currentTraceparent(active: Context = context.active()): string | undefined {
  const carrier: Record<string, string> = {};
  w3c.inject(active, carrier, { set: (c, k, v) => (c[k] = v) });
  return carrier["traceparent"];
}

/** A context whose parent is the span `traceparent` names; the active context when it is absent or malformed. */
export function contextOf(traceparent: unknown): Context {
  const valid = TraceparentSchema.safeParse(traceparent);
  if (!valid.success) return context.active();
  return w3c.extract(ROOT_CONTEXT, { traceparent: valid.data }, { get: (c, k) => c[k], keys: (c) => Object.keys(c) });
}

/** The `traceparent` a saga was started with (its input's), if any: the same string on every replay. */
export function sagaTraceparent(input: unknown): string | undefined {
  if (typeof input !== "object" || input === null) return undefined;
  const parsed = TraceparentSchema.safeParse((input as Record<string, unknown>)["traceparent"]);
  return parsed.success ? parsed.data : undefined;
}

/**
 * A saga input with the active trace context added as `traceparent` (how a saga learns its trace without reading
 * ambient state, which a replay could not reproduce); unchanged when nothing is recording or it is not an object.
 */
export function withTraceparent(input: unknown): unknown {
  const traceparent = currentTraceparent();
  return traceparent && typeof input === "object" && input !== null && !Array.isArray(input) ? { ...input, traceparent } : input;
}

export interface SpanOptions {
  /** The parent; default the active context. */
  parent?: Context;
  attributes?: Attributes;
  kind?: SpanKind;
}

/**
 * Runs `fn` inside a new active span (so SDK calls it makes become its children) and ends it; a throw marks the span
 * failed with the error's type only — messages can quote input, and no attribute may carry a secret.
 */
export async function inSpan<T>(name: string, options: SpanOptions, fn: (span: Span) => Promise<T>): Promise<T> {
  const parent = options.parent ?? context.active();
  const span = tracer().startSpan(name, { kind: options.kind ?? SpanKind.INTERNAL, attributes: options.attributes }, parent);
  try {
    return await context.with(trace.setSpan(parent, span), () => fn(span));
  } catch (error) {
    markFailed(span, error);
    throw error;
  } finally {
    span.end();
  }
}

/** Failed, with the error's code or class name as `error.type` (OpenTelemetry's attribute for it). */
export function markFailed(span: Span, error: unknown): void {
  const code = (error as { code?: unknown } | null)?.code;
  const type = typeof code === "string" ? code : error instanceof Error ? error.name : typeof error;
  span.setStatus({ code: SpanStatusCode.ERROR, message: type });
  span.setAttribute("error.type", type);
}
