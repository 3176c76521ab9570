/** api-version strings are dates with an optional stage suffix; ordering is by the date. */

const API_VERSION = /^(\d{4}-\d{2}-\d{2})(-[a-z]+(?:\.\d+)?)?$/i;

export function isWellFormedApiVersion(value: string): boolean {
  return API_VERSION.test(value);
}

/** Compares the date parts; a preview of a date sorts with that date. */
export function apiVersionBefore(value: string, reference: string): boolean {
  const a = API_VERSION.exec(value)?.[1] ?? value;
  const b = API_VERSION.exec(reference)?.[1] ?? reference;
  return a < b;
}
