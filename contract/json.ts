/**
 * JSON values as the wire sees them. Signing goes through canonicalize, which quietly drops `undefined`, turns array
 * holes into null and calls toJSON; a signature over such a value would not match what the receiver parses, so
 * anything that does not survive JSON unchanged is refused here first.
 */
import * as z from "zod";
import { NonJsonValueError } from "./errors.js";

export type JsonPrimitive = string | number | boolean | null;
export type JsonValue = JsonPrimitive | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue;
}

export const JsonObjectSchema: z.ZodType<JsonObject> = z.record(z.string(), z.json());

/** RFC 6901 escaping, so paths in errors point at exactly one field even when keys contain "/" or "~". */
export function pointer(parent: string, key: string | number): string {
  return `${parent}/${String(key).replaceAll("~", "~0").replaceAll("/", "~1")}`;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function checkString(s: string, path: string, what: string): void {
  // UTF-8 cannot encode a lone surrogate, so two different strings would sign the same bytes.
  if (LONE_SURROGATE.test(s)) throw new NonJsonValueError(path, `${what} contains a lone UTF-16 surrogate`);
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "object") return (value as object).constructor?.name ?? "object";
  return typeof value;
}

function walk(value: unknown, path: string, ancestors: Set<object>): void {
  switch (typeof value) {
    case "string":
      checkString(value, path, "string");
      return;
    case "boolean":
      return;
    case "number":
      if (!Number.isFinite(value)) throw new NonJsonValueError(path, `${value} has no JSON form`);
      return;
    case "object":
      break;
    default:
      throw new NonJsonValueError(path, `${typeof value} has no JSON form`);
  }
  if (value === null) return;
  if (ancestors.has(value)) throw new NonJsonValueError(path, "circular reference");
  if (Object.getOwnPropertySymbols(value).length > 0) throw new NonJsonValueError(path, "symbol-keyed properties are not JSON");
  ancestors.add(value);
  if (Array.isArray(value)) {
    // A hole or an extra named property would be changed or dropped by serialization.
    if (Object.keys(value).length !== value.length) throw new NonJsonValueError(path, "sparse array or array with extra properties");
    value.forEach((item: unknown, index) => walk(item, pointer(path, index), ancestors));
  } else {
    const proto: unknown = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) throw new NonJsonValueError(path, `${describe(value)} is not a plain object`);
    for (const [key, item] of Object.entries(value)) {
      const at = pointer(path, key);
      checkString(key, at, "key");
      // Ordinary objects and zod records cannot hold an own "__proto__", so it would vanish on the receiving side.
      if (key === "__proto__") throw new NonJsonValueError(at, `the key "__proto__" does not survive parsing`);
      walk(item, at, ancestors);
    }
  }
  ancestors.delete(value);
}

/** Throws NonJsonValueError (with the JSON pointer of the first offending value) unless `value` is faithful JSON. */
export function assertJsonValue(value: unknown): asserts value is JsonValue {
  walk(value, "", new Set());
}

export function assertJsonObject(value: unknown): asserts value is JsonObject {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new NonJsonValueError("", "expected a JSON object");
  walk(value, "", new Set());
}
