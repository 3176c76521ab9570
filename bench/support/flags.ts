/**
 * Benchmark flags: `--name value` pairs and bare `--switch`es, parsed with a zod schema so a bad flag fails before
 * anything starts, naming the flag. Flag names are kebab-case on the command line and camelCase in the schema.
 */
import * as z from "zod";

export class FlagError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FlagError";
  }
}

const camel = (name: string): string => name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
const kebab = (name: string): string => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/** Reads `args` into `schema`. Unknown flags are errors; `--quick` is handled by runBench and always allowed. */
export function parseFlags<S extends z.ZodObject>(args: readonly string[], schema: S): z.infer<S> {
  const raw: Record<string, string | true> = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith("--")) throw new FlagError(`unexpected argument '${arg}' (flags look like --name value)`);
    const [name, inline] = arg.slice(2).split("=", 2) as [string, string | undefined];
    if (name === "quick") continue;
    const next = args[i + 1];
    if (inline !== undefined) raw[camel(name)] = inline;
    else if (next !== undefined && !next.startsWith("--")) {
      raw[camel(name)] = next;
      i++;
    } else raw[camel(name)] = true;
  }
  const known = new Set(Object.keys(schema.shape));
  const unknown = Object.keys(raw).filter((k) => !known.has(k));
  if (unknown.length > 0)
    throw new FlagError(`unknown flag(s): ${unknown.map((k) => `--${kebab(k)}`).join(", ")}; known: ${[...known].map((k) => `--${kebab(k)}`).join(", ")}`);
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    throw new FlagError(parsed.error.issues.map((i) => `--${kebab(String(i.path[0] ?? "?"))}: ${i.message}`).join("; "));
  }
  return parsed.data;
}

/** A positive integer flag (`--nodes 2000`). */
export const intFlag = () => z.coerce.number().int().positive();
/** A comma-separated list of positive integers (`--concurrency 1,8,32`). */
export const intListFlag = () =>
  z
    .string()
    .regex(/^\d+(,\d+)*$/, "must be comma-separated positive integers")
    .transform((s) => s.split(",").map(Number))
    .refine((xs) => xs.every((x) => x > 0), "every value must be positive");
