/**
 * A `Range: bytes=<from>-[<to>]` request against a stored body, as both artifact servers answer it: the agent resumes a
 * cut download into its .part file with `bytes=<what it has>-`. One range only (RFC 9110 §14.1.2); anything else, or a
 * start past the end, is 416 with the size.
 */
export type ByteRangeAnswer =
  { status: 200 | 206; slice: Uint8Array; headers: Record<string, string> } | { status: 416; slice?: undefined; headers: Record<string, string> };

export function byteRange(body: Uint8Array, range: string | undefined): ByteRangeAnswer {
  const m = range ? /^bytes=(\d+)-(\d*)$/.exec(range) : null;
  if (range && (!m || Number(m[1]) >= body.length)) return { status: 416, headers: { "content-range": `bytes */${body.length}` } };
  const start = m ? Number(m[1]) : 0;
  const end = m && m[2] ? Math.min(Number(m[2]), body.length - 1) : body.length - 1;
  const slice = body.subarray(start, end + 1);
  const headers: Record<string, string> = { "content-type": "application/octet-stream", "content-length": String(slice.length), "accept-ranges": "bytes" };
  return m ? { status: 206, slice, headers: { ...headers, "content-range": `bytes ${start}-${end}/${body.length}` } } : { status: 200, slice, headers };
}
