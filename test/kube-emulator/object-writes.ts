/**
 * The generic registry rules every write goes through, whatever the type: list paging and selection, name/namespace
 * agreement between URL and body, optimistic concurrency on update, and delete preconditions.
 */
import { parseLabelSelector } from "./label-selector.js";
import type { KubeObject, Revisions } from "./object-store.js";
import { decode, DeleteOptionsBody, type BodyMeta } from "./request-body.js";
import { statusErrors, type ResourceName } from "./status.js";

/**
 * A `<Kind>List`: items without apiVersion/kind (as served), filtered by labelSelector, cut by limit/continue. The
 * continue token is the etcd3 store's (`{"v":"meta.k8s.io/v1","rv":<list revision>,"start":"<key>\u0000"}`, base64url):
 * a token older than the last compaction answers 410 Expired, carrying a token (rv -1) that reads the rest as it is
 * now. Pages are cut from the objects as they are now, not from a snapshot at the list's revision.
 */
export function listResponse(kind: string, apiVersion: string, objects: KubeObject[], query: URLSearchParams, revisions: Revisions): Record<string, unknown> {
  const selector = parseLabelSelector(query.get("labelSelector"));
  const limit = parseLimit(query.get("limit"));
  const from = parseContinue(query.get("continue"));
  if (from !== undefined && from.rv !== -1 && revisions.compacted(from.rv)) throw statusErrors.continueExpired(continueToken(-1, from.start));
  const rv = from === undefined || from.rv === -1 ? Number(revisions.current) : from.rv;
  const selected = objects.filter((o) => selector(o.metadata.labels)).filter((o) => from === undefined || sortKey(o) >= from.start);
  const page = limit === undefined ? selected : selected.slice(0, limit);
  const more = page.length < selected.length;
  const last = page.at(-1);
  return {
    kind: `${kind}List`,
    apiVersion,
    metadata: {
      resourceVersion: String(rv),
      ...(more && last ? { continue: continueToken(rv, `${sortKey(last)}\u0000`) } : {}),
    },
    items: page.map(({ apiVersion: _v, kind: _k, ...item }) => item),
  };
}

function sortKey(o: KubeObject): string {
  return `${o.metadata.namespace ?? ""}/${o.metadata.name}`;
}

function continueToken(rv: number, start: string): string {
  return Buffer.from(JSON.stringify({ v: "meta.k8s.io/v1", rv, start })).toString("base64url");
}

function parseLimit(value: string | null): number | undefined {
  if (value === null || value === "" || value === "0") return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw statusErrors.badRequest(`invalid limit: ${value}`);
  return n;
}

function parseContinue(value: string | null): { rv: number; start: string } | undefined {
  if (value === null || value === "") return undefined;
  try {
    const parsed = JSON.parse(Buffer.from(value, "base64url").toString("utf8")) as { v?: unknown; rv?: unknown; start?: unknown };
    if (parsed.v === "meta.k8s.io/v1" && typeof parsed.start === "string" && Number.isInteger(parsed.rv))
      return { rv: parsed.rv as number, start: parsed.start };
  } catch {
    // fall through to the 400
  }
  throw statusErrors.badRequest("continue key is not valid: the continue parameter is malformed");
}

/** POST: the body may omit the namespace but not contradict the URL; names are not generated here. */
export function nameForCreate(meta: BodyMeta, urlNamespace: string | undefined): string | undefined {
  if (meta.namespace !== undefined && meta.namespace !== "" && urlNamespace !== undefined && meta.namespace !== urlNamespace) {
    throw statusErrors.badRequest("the namespace of the provided object does not match the namespace sent on the request");
  }
  if (meta.resourceVersion !== undefined && meta.resourceVersion !== "")
    throw statusErrors.badRequest("resourceVersion should not be set on objects to be created");
  return meta.name === "" ? undefined : meta.name;
}

/** PUT: the body names the object in the URL; a stale resourceVersion is a 409 Conflict. */
export function checkUpdate(r: ResourceName, urlName: string, meta: BodyMeta, existing: KubeObject | undefined): void {
  if (meta.name !== urlName) throw statusErrors.badRequest(`the name of the object (${meta.name ?? ""}) does not match the name on the URL (${urlName})`);
  const rv = meta.resourceVersion;
  if (rv !== undefined && rv !== "" && (existing === undefined || existing.metadata.resourceVersion !== rv)) throw statusErrors.conflict(r, urlName);
}

/** DELETE with DeleteOptions.preconditions: a uid or resourceVersion that no longer matches is a 409 Conflict. */
export function checkDeletePreconditions(r: ResourceName, existing: KubeObject, body: unknown): void {
  if (body === undefined) return;
  const pre = decode(DeleteOptionsBody, body, "DeleteOptions").preconditions;
  if (pre?.uid && pre.uid !== existing.metadata.uid) {
    throw statusErrors.conflict(
      r,
      existing.metadata.name,
      `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${existing.metadata.uid}`,
    );
  }
  if (pre?.resourceVersion && pre.resourceVersion !== existing.metadata.resourceVersion) {
    throw statusErrors.conflict(
      r,
      existing.metadata.name,
      `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${existing.metadata.resourceVersion}`,
    );
  }
}

/** Drops null/empty optional maps the way the server's JSON does (omitempty). */
export function presentMap(map: Record<string, string> | null | undefined): Record<string, string> | undefined {
  return map && Object.keys(map).length > 0 ? { ...map } : undefined;
}
