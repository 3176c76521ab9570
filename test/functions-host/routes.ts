/**
 * Route templates as the Functions host matches them: `/{routePrefix}/{route}` where a route defaults to the function
 * name, literals compare case-insensitively, `{p}` / `{p?}` / `{*p}` parameters, and `{p:int|long|bool|guid|alpha}`
 * constraints (any other constraint is refused when the route is compiled). Enough for the host stand-in to answer
 * any path `func start` would.
 */
export interface CompiledRoute {
  template: string;
  segments: Segment[];
  literalCount: number;
}

type Segment = { kind: "literal"; value: string } | { kind: "param"; name: string; optional: boolean; catchAll: boolean; constraint?: string };

const CONSTRAINTS: Record<string, RegExp> = {
  int: /^-?\d+$/,
  long: /^-?\d+$/,
  bool: /^(true|false)$/i,
  guid: /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i,
  alpha: /^[a-z]+$/i,
};

/**
 * Compiles a route template. A constraint the stand-in cannot check (argument constraints such as `min(5)`,
 * `length(3)`, `regex(...)`, or any name outside the table) is refused here rather than ignored: ignoring it would
 * route requests to a function the host would not, and a test would pass that fails under `func start`.
 */
export function compileRoute(template: string): CompiledRoute {
  const segments: Segment[] = template
    .split("/")
    .filter((s) => s.length > 0)
    .map((raw): Segment => {
      const m = /^\{(\*)?([A-Za-z_][\w]*)(?::([^}?]+))?(\?)?\}$/.exec(raw);
      if (!m) {
        if (raw.includes("{")) throw new Error(`unsupported route segment "${raw}" in "${template}"`);
        return { kind: "literal", value: raw.toLowerCase() };
      }
      const constraint = m[3];
      if (constraint !== undefined && !Object.hasOwn(CONSTRAINTS, constraint)) {
        throw new Error(`unsupported route constraint "${constraint}" in "${template}" (the stand-in checks ${Object.keys(CONSTRAINTS).join(", ")})`);
      }
      return { kind: "param", name: m[2]!, catchAll: m[1] === "*", optional: m[4] === "?" || m[1] === "*", constraint };
    });
  return { template, segments, literalCount: segments.filter((s) => s.kind === "literal").length };
}

export function matchRoute(route: CompiledRoute, path: string): Record<string, string> | undefined {
  let parts: string[];
  try {
    parts = path
      .split("/")
      .filter((s) => s.length > 0)
      .map((p) => decodeURIComponent(p));
  } catch (error) {
    // A malformed %-escape matches no route: the host answers 404, not a 500.
    if (error instanceof URIError) return undefined;
    throw error;
  }
  const params: Record<string, string> = {};
  let i = 0;
  for (const seg of route.segments) {
    if (seg.kind === "literal") {
      if (parts[i]?.toLowerCase() !== seg.value) return undefined;
      i++;
      continue;
    }
    if (seg.catchAll) {
      if (i < parts.length) params[seg.name] = parts.slice(i).join("/");
      i = parts.length;
      continue;
    }
    const part = parts[i];
    if (part === undefined) {
      if (seg.optional) continue;
      return undefined;
    }
    const check = seg.constraint ? CONSTRAINTS[seg.constraint] : undefined;
    if (check && !check.test(part)) return undefined;
    params[seg.name] = part;
    i++;
  }
  return i === parts.length ? params : undefined;
}
