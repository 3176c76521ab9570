/** Field schemas shared by the signed messages, and the one place zod issues become MessageSchemaError. */
import * as z from "zod";
import { InvalidArgumentError, MessageSchemaError, type SchemaIssue } from "./errors.js";
import { pointer } from "./json.js";

/**
 * Node, saga and step ids: printable ASCII without spaces. Durable instance ids and generated ids all fit, and
 * nothing that could smuggle a line break into a log or a header does.
 */
export const IdentifierSchema = z.string().regex(/^[\x21-\x7e]{1,256}$/, "must be 1-256 printable ASCII characters without spaces");

/** ISO 8601 in UTC ("Z"), so every reader compares instants the same way. */
export const UtcTimestampSchema = z.iso.datetime({ message: "must be an ISO 8601 UTC timestamp ending in Z" });

export const AttemptSchema = z.int().min(1).describe("1 for the first try of a step, incremented on each retry");

/**
 * A W3C Trace Context `traceparent` (version 00, sampled flag free): the onboarding's trace carried through a signed
 * envelope and echoed in the result, so the node's step shows in the same trace. All-zero ids are invalid by the spec.
 */
export const TraceparentSchema = z
  .string()
  .regex(/^00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$/, "must be a W3C traceparent (00-<32 hex>-<16 hex>-<2 hex>)");

export function toSchemaIssues(error: z.ZodError, prefix = ""): SchemaIssue[] {
  return error.issues.map((issue) => ({
    path: issue.path.reduce<string>((at, key) => pointer(at, typeof key === "symbol" ? key.toString() : key), prefix),
    message: issue.message,
  }));
}

export function parseWith<S extends z.ZodType>(schema: S, value: unknown, messageType: string, prefix = ""): z.output<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw new MessageSchemaError(messageType, toSchemaIssues(result.error, prefix));
  return result.data;
}

/** Readers take `now` from the caller; this keeps that Date usable and the ISO form deterministic. */
export function isoOf(date: Date, what: string): string {
  if (!(date instanceof Date) || Number.isNaN(date.getTime())) throw new InvalidArgumentError(`${what} must be a valid Date`);
  return date.toISOString();
}
