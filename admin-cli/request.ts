/**
 * Turns a command line into an HTTP request by the operation's OpenAPI description: the positional argument fills its
 * path parameter (or, for a create, the body's `name`), `--kebab-case` flags fill query parameters and body fields
 * of the same name in camelCase, and `--body` (JSON, or @file) gives a whole body for the fields flags cannot express.
 */
import { readFileSync } from "node:fs";
import type { CommandSpec } from "./commands.js";
import type { Operation } from "./operations.js";

export class UsageError extends Error {
  override name = "UsageError";
}

export interface ApiRequest {
  method: string;
  /** Path and query, e.g. /api/manage/nodes?status=Failed */
  path: string;
  body?: Record<string, unknown>;
}

export const camel = (kebab: string): string => kebab.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
export const kebab = (camelCase: string): string => camelCase.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/** Flags as given: `--name value`, `--name=value`, or a bare `--name` (true). */
export function parseFlags(args: string[], booleans: ReadonlySet<string>): { positionals: string[]; flags: Map<string, string | true> } {
  const positionals: string[] = [];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (!a.startsWith("--")) {
      positionals.push(a);
      continue;
    }
    const eq = a.indexOf("=");
    const name = a.slice(2, eq < 0 ? undefined : eq);
    if (eq >= 0) flags.set(name, a.slice(eq + 1));
    else if (booleans.has(name) || i + 1 >= args.length || args[i + 1]!.startsWith("--")) flags.set(name, true);
    else flags.set(name, args[++i]!);
  }
  return { positionals, flags };
}

/** Body fields and query parameters a flag may set, by kebab-case flag name. */
export function operationFlags(op: Operation): Map<string, { name: string; type?: string; where: "path" | "query" | "body" }> {
  const out = new Map<string, { name: string; type?: string; where: "path" | "query" | "body" }>();
  for (const p of op.parameters) out.set(kebab(p.name), { name: p.name, type: p.type, where: p.in });
  for (const f of op.body?.fields ?? []) out.set(kebab(f.name), { name: f.name, type: f.type, where: "body" });
  return out;
}

function value(flag: string, raw: string | true, type: string | undefined): unknown {
  if (type === "boolean") return raw === true || raw === "true";
  if (raw === true) throw new UsageError(`--${flag} needs a value`);
  if (type === "integer" || type === "number") {
    const n = Number(raw);
    if (!Number.isFinite(n)) throw new UsageError(`--${flag} must be a number (got '${raw}')`);
    return n;
  }
  if (type === "object" || type === "array") {
    try {
      return JSON.parse(raw) as unknown;
    } catch {
      throw new UsageError(`--${flag} must be JSON (got '${raw}')`);
    }
  }
  return raw;
}

export function buildRequest(command: CommandSpec, op: Operation, positionals: string[], flags: Map<string, string | true>): ApiRequest {
  const known = operationFlags(op);
  const query = new URLSearchParams();
  let body: Record<string, unknown> | undefined = op.body ? {} : undefined;
  const given = flags.get("body");
  if (given !== undefined) {
    if (!op.body) throw new UsageError(`${command.words.join(" ")} takes no body`);
    if (given === true) throw new UsageError("--body needs JSON or @file");
    const text = given.startsWith("@") ? readFileSync(given.slice(1), "utf8") : given;
    try {
      body = JSON.parse(text) as Record<string, unknown>;
    } catch {
      throw new UsageError("--body is not valid JSON");
    }
  }
  let path = op.path;
  for (const [flag, raw] of flags) {
    if (flag === "body") continue;
    const target = known.get(flag);
    if (!target) continue; // global flags (--url, --output, ...) are read by the caller
    const v = value(flag, raw, target.type);
    if (target.where === "path") path = path.replace(`{${target.name}}`, encodeURIComponent(String(v)).replace(/%3A/g, ":"));
    else if (target.where === "query") query.set(target.name, String(v));
    else body![target.name] = v;
  }
  const pathParams = op.parameters.filter((p) => p.in === "path");
  if (positionals.length > 1) throw new UsageError(`unexpected argument '${positionals[1]}'`);
  if (command.positional) {
    const arg = positionals[0];
    if (arg === undefined) throw new UsageError(`${command.words.join(" ")} needs <${command.positional}>`);
    if (pathParams.some((p) => p.name === command.positional)) path = path.replace(`{${command.positional}}`, encodeURIComponent(arg).replace(/%3A/g, ":"));
    else body![command.positional] = arg;
  } else if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  const missing = pathParams.find((p) => path.includes(`{${p.name}}`));
  if (missing) throw new UsageError(`missing <${missing.name}>`);
  const qs = query.toString();
  return { method: op.method, path: qs ? `${path}?${qs}` : path, body };
}
