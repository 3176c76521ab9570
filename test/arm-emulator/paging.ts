/** ARM list responses: `{ value, nextLink }`, with a skip token in the next link that points back at the caller's origin. */
import type { RequestContext } from "./router.js";

export function pageOf<T>(items: readonly T[], ctx: RequestContext, pageSize: number): { value: T[]; nextLink: string | null } {
  const skip = Number.parseInt(ctx.query.get("$skiptoken") ?? "0", 10);
  const start = Number.isFinite(skip) && skip > 0 ? skip : 0;
  const value = items.slice(start, start + pageSize);
  if (start + pageSize >= items.length) return { value, nextLink: null };
  const next = new URLSearchParams(ctx.rawQuery);
  next.set("$skiptoken", String(start + pageSize));
  return { value, nextLink: `${ctx.origin}${ctx.path}?${next.toString()}` };
}
