/**
 * Route templates as the Functions host matches them: `/{routePrefix}/{route}` where a route defaults to the function
 * name, literals compare case-insensitively, `{p}` / `{p?}` / `{*p}` parameters, and `{p:int|long|bool|guid|alpha}`
 * constraints. Enough for the host stand-in to answer any path `func start` would.
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

export function compileRoute(template: string): CompiledRoute {
  const segments: Segment[] = template
    .split("/")
    .filter((s) => s.length > 0)
    .map((raw): Segment => {
      const m = /^\{(\*)?([A-Za-z_][\w]*)(?::([a-z]+)(?:\([^)]*\))?)?(\?)?\}$/.exec(raw);
      if (!m) {
        if (raw.includes("{")) throw new Error(`unsupported route segment "${raw}" in "${template}"`);
        return { kind: "literal", value: raw.toLowerCase() };
      }
      return { kind: "param", name: m[2]!, catchAll: m[1] === "*", optional: m[4] === "?" || m[1] === "*", constraint: m[3] };
    });
  return { template, segments, literalCount: segments.filter((s) => s.kind === "literal").length };
}

export function matchRoute(route: CompiledRoute, path: string): Record<string, string> | undefined {
  const parts = path
    .split("/")
    .filter((s) => s.length > 0)
    .map((p) => decodeURIComponent(p));
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
