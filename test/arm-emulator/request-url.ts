/**
 * Splits a request URL without `new URL()`: a WHATWG parse of a path starting with `//` reads `subscriptions` as a
 * host, and such a path must reach the emulator intact to be refused (see `emptySegment`).
 */
import { normalisePath } from "../support/index.js";

export const DEFAULT_ORIGIN = "https://management.azure.com";

export interface ParsedRequestUrl {
  /** Scheme and authority the request came in on; LRO and paging links point back here. */
  origin: string;
  /** Decoded path with repeated slashes collapsed and no trailing slash (except the root). */
  path: string;
  query: URLSearchParams;
  /** The query string as sent, without the leading `?`. */
  rawQuery: string;
  /** True when the path as sent has an empty segment (`//subscriptions/...`, `.../machines//m1`). */
  emptySegment: boolean;
}

export function parseRequestUrl(url: string): ParsedRequestUrl {
  const originMatch = /^(https?:\/\/[^/?#]+)(.*)$/i.exec(url);
  const origin = originMatch?.[1] ?? DEFAULT_ORIGIN;
  const rest = originMatch ? (originMatch[2] ?? "") : url;
  const hashless = rest.split("#", 1)[0] ?? "";
  const queryAt = hashless.indexOf("?");
  const rawPath = queryAt < 0 ? hashless : hashless.slice(0, queryAt);
  const rawQuery = queryAt < 0 ? "" : hashless.slice(queryAt + 1);
  return { origin, path: normalisePath(rawPath), query: new URLSearchParams(rawQuery), rawQuery, emptySegment: rawPath.includes("//") };
}
