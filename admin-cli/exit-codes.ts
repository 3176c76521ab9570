/** The CLI's exit codes, documented in its usage and in the README ("Operating a fleet"); scripts branch on them. */
export const EXIT = {
  ok: 0,
  /** Anything not listed below: the service unreachable, an unexpected answer. */
  failed: 1,
  usage: 2,
  /** 401/403: not signed in, or lacking FlexNode.Admin / FlexNode.Reader. */
  unauthorized: 3,
  notFound: 4,
  /** 409/412: the object is in the wrong state or changed meanwhile. */
  conflict: 5,
  /** 400/413/415/422: the service refused the input (the problem names the field). */
  invalid: 6,
  /** 429/503: busy (pool full, throttled); retry after the time the service asked. */
  busy: 7,
  /** Other 5xx. */
  serverError: 8,
  /** watch: the node ended Failed. */
  nodeFailed: 10,
  /** watch: --timeout passed first. */
  timedOut: 11,
} as const;

export function exitFor(status: number): number {
  if (status === 401 || status === 403) return EXIT.unauthorized;
  if (status === 404) return EXIT.notFound;
  if (status === 409 || status === 412) return EXIT.conflict;
  if (status === 429 || status === 503) return EXIT.busy;
  if (status >= 500) return EXIT.serverError;
  if (status >= 400) return EXIT.invalid;
  return EXIT.ok;
}
