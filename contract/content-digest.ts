/**
 * RFC 9530 Content-Digest over the exact body bytes. Strings are taken as UTF-8 because that is what fetch and the
 * Functions host put on the wire; callers holding raw bytes pass them as bytes so nothing is re-encoded.
 */
import { createHash } from "node:crypto";
import { MalformedSignatureError } from "./errors.js";

/** What a request body can be handed over as: `await request.arrayBuffer()` from the Functions host works as is. */
export type Body = Uint8Array | ArrayBuffer | string | null | undefined;

export function bodyBytes(body: Body): Uint8Array {
  if (body === null || body === undefined) return new Uint8Array(0);
  if (typeof body === "string") return Buffer.from(body, "utf8");
  return body instanceof ArrayBuffer ? new Uint8Array(body) : body;
}

export function sha256Digest(body: Body): Buffer {
  return createHash("sha256").update(bodyBytes(body)).digest();
}

/** The header value for `body`: `sha-256=:<base64>:` (an empty body still gets one, so "no body" is signed too). */
export function contentDigest(body: Body): string {
  return `sha-256=:${sha256Digest(body).toString("base64")}:`;
}

const MEMBER = /^([a-z][a-z0-9_.*-]*)=:([A-Za-z0-9+/]*={0,2}):$/;

/**
 * Parses a Content-Digest dictionary into algorithm → digest bytes. Only the byte-sequence members RFC 9530
 * defines are accepted; anything else is malformed rather than skipped.
 */
export function parseContentDigest(header: string): Map<string, Buffer> {
  const digests = new Map<string, Buffer>();
  for (const member of header.split(",")) {
    const match = MEMBER.exec(member.trim());
    if (match === null) throw new MalformedSignatureError("content-digest is not a dictionary of algorithm=:base64: members");
    const [, alg, b64] = match as unknown as [string, string, string];
    if (digests.has(alg)) throw new MalformedSignatureError(`content-digest lists ${alg} twice`);
    digests.set(alg, Buffer.from(b64, "base64"));
  }
  return digests;
}
