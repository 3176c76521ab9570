/**
 * RFC 9421 signatures on the agent's requests to the node API, made with the node's Ed25519 identity key.
 *
 * Profile (anything else is refused as malformed):
 *   Signature-Input: flexnode=("@method" "@path" ["@query"] "content-digest");created=<s>;keyid="<thumbprint>";alg="ed25519";nonce="<nonce>"
 *   Signature:       flexnode=:<64-byte Ed25519 signature, base64>:
 *   Content-Digest:  sha-256=:<SHA-256 of the exact body bytes, base64>:
 * `@authority` and `@target-uri` are not covered: behind Front Door / App Service the host the agent called is not
 * the host the function sees, while the path and query survive. `@query` is covered whenever the URL has one, and
 * the verifier insists on it then, so a query cannot be added to a request that was signed without one.
 *
 * Replay: `created` bounds a captured request's useful life to the skew window; inside it, only a NonceStore stops
 * a replay (see nonce-store.ts).
 */
import { randomBytes, sign, timingSafeEqual, verify, type KeyObject } from "node:crypto";
import { httpbis, type Request as SignableRequest, type VerifyingKey } from "http-message-signatures";
import { bodyBytes, contentDigest, parseContentDigest, sha256Digest, type Body } from "./content-digest.js";
import {
  BadSignatureError,
  ContentDigestMismatchError,
  ContractError,
  FutureSignatureError,
  InvalidArgumentError,
  MalformedSignatureError,
  MissingSignatureHeadersError,
  ReplayedRequestError,
  StaleSignatureError,
  UnknownKeyError,
} from "./errors.js";
import { assertEd25519, isBase64UrlOfLength, keyIdOf } from "./keys.js";
import type { NonceStore } from "./nonce-store.js";

export const NODE_SIGNATURE_LABEL = "flexnode";
export const NODE_SIGNATURE_ALG = "ed25519";
export const DEFAULT_NODE_REQUEST_SKEW_SECONDS = 120;
const MAX_SKEW_SECONDS = 900;
const SIGNATURE_PARAMS = ["created", "keyid", "alg", "nonce"] as const;
const NONCE = /^[A-Za-z0-9_-]{16,128}$/;

/** Header values as Node's IncomingHttpHeaders, a plain record, or a fetch/Functions `Headers` object provide them. */
export type HeaderSource = Readonly<Record<string, string | readonly string[] | undefined>> | { get(name: string): string | null };

export interface NodeRequest {
  method: string;
  /** Absolute URL, or a path with optional query (resolved against a placeholder origin; the origin is not signed). */
  url: string | URL;
  headers?: HeaderSource;
  /** The exact body bytes as sent; a string is taken as UTF-8. */
  body?: Body;
}

export interface SignNodeRequestOptions {
  /** Defaults to the thumbprint of `privateKey`; if given it must match. */
  keyId?: string;
  privateKey: KeyObject;
  now: Date;
  /** Defaults to 128 random bits; pass one for deterministic tests. */
  nonce?: string;
}

/** A type alias rather than an interface so it can be passed wherever a plain header record is expected. */
export type NodeRequestSignatureHeaders = {
  "content-digest": string;
  "signature-input": string;
  signature: string;
};

export interface VerifyNodeRequestOptions {
  /** The public key registered for a node key id, or undefined when none is. */
  lookupPublicKey(keyId: string): KeyObject | undefined | Promise<KeyObject | undefined>;
  now: Date;
  /** How far `created` may be from `now`, either way. Default 120, at most 900. */
  maxSkewSeconds?: number;
  /** When given, each nonce is accepted once per key; without it, replays within the skew window are possible. */
  nonceStore?: NonceStore;
}

export interface VerifiedNodeRequest {
  keyId: string;
  created: Date;
  nonce: string;
}

function toUrl(url: string | URL): URL {
  try {
    return typeof url === "string" ? new URL(url, "https://node-api.invalid") : url;
  } catch (cause) {
    throw new InvalidArgumentError(`request url ${JSON.stringify(String(url))} is not a URL or path`, { cause });
  }
}

function headerValue(headers: HeaderSource | undefined, name: string): string | undefined {
  if (headers === undefined) return undefined;
  if (typeof headers.get === "function") return (headers as { get(name: string): string | null }).get(name) ?? undefined;
  const values: string[] = [];
  for (const [key, value] of Object.entries(headers as Readonly<Record<string, string | readonly string[] | undefined>>)) {
    if (key.toLowerCase() !== name || value === undefined) continue;
    if (typeof value === "string") values.push(value);
    else values.push(...value);
  }
  // Repeated field lines combine with ", " (RFC 9110 §5.3), which also turns two signatures into a refused list.
  return values.length === 0 ? undefined : values.join(", ");
}

function coveredComponents(url: URL): string[] {
  return url.search === "" ? ["@method", "@path", "content-digest"] : ["@method", "@path", "@query", "content-digest"];
}

function epochSeconds(date: Date, what: string): number {
  if (!(date instanceof Date) || Number.isNaN(date.getTime())) throw new InvalidArgumentError(`${what} must be a valid Date`);
  return Math.floor(date.getTime() / 1000);
}

function ed25519Signer(privateKey: KeyObject) {
  return async (data: Buffer): Promise<Buffer> => sign(null, data, privateKey);
}

/** Agent side: the headers to add to the request. The caller must send `body` byte for byte as given here. */
export async function signNodeRequest(request: NodeRequest, options: SignNodeRequestOptions): Promise<NodeRequestSignatureHeaders> {
  const { privateKey, now } = options;
  assertEd25519(privateKey, "private", "node signing key");
  const ownKeyId = keyIdOf(privateKey);
  if (options.keyId !== undefined && options.keyId !== ownKeyId) throw new InvalidArgumentError("keyId is not the thumbprint of privateKey");
  const nonce = options.nonce ?? randomBytes(16).toString("base64url");
  if (!NONCE.test(nonce)) throw new InvalidArgumentError("nonce must be 16-128 base64url characters");
  const created = epochSeconds(now, "now");
  if (headerValue(request.headers, "signature") !== undefined || headerValue(request.headers, "signature-input") !== undefined) {
    throw new InvalidArgumentError("request is already signed; the node API accepts exactly one signature");
  }

  const url = toUrl(request.url);
  const digest = contentDigest(request.body);
  // Only the digest header is handed over: it is the one field covered, and nothing else can leak into the output.
  const signable: SignableRequest = { method: request.method, url, headers: { "content-digest": digest } };
  const signed = await httpbis.signMessage(
    {
      key: { id: ownKeyId, alg: NODE_SIGNATURE_ALG, sign: ed25519Signer(privateKey) },
      name: NODE_SIGNATURE_LABEL,
      fields: coveredComponents(url),
      params: [...SIGNATURE_PARAMS],
      paramValues: { created: new Date(created * 1000), nonce },
    },
    signable,
  );
  const signatureInput = headerValue(signed.headers, "signature-input");
  const signature = headerValue(signed.headers, "signature");
  if (signatureInput === undefined || signature === undefined) throw new Error("http-message-signatures returned no signature headers");
  return { "content-digest": digest, "signature-input": signatureInput, signature };
}

interface ParsedSignatureInput {
  components: string[];
  params: Map<string, string | number>;
}

const TOKEN_KEY = "[a-z*][a-z0-9_.*-]*";
const SF_STRING = '"[\\x20\\x21\\x23-\\x5b\\x5d-\\x7e]*"';
const SIGNATURE_INPUT = new RegExp(`^(${TOKEN_KEY})=\\(([^()]*)\\)((?:;${TOKEN_KEY}=(?:${SF_STRING}|-?[0-9]{1,15}))*)$`);
const PARAM = new RegExp(`;(${TOKEN_KEY})=(?:"([\\x20\\x21\\x23-\\x5b\\x5d-\\x7e]*)"|(-?[0-9]{1,15}))`, "g");
const COMPONENT = /^"(@?[a-z0-9][a-z0-9_.-]*)"$/;
const SIGNATURE = /^([a-z*][a-z0-9_.*-]*)=:([A-Za-z0-9+/]*={0,2}):$/;

/**
 * A deliberately narrow reading of RFC 8941: one member, plain quoted component names, string/integer params. It
 * runs before the library so failures get precise errors and the library only ever sees a single signature (with
 * several, it reports whether one of them verified, not which key did).
 */
function parseSignatureInput(value: string): ParsedSignatureInput {
  const match = SIGNATURE_INPUT.exec(value.trim());
  if (match === null) {
    throw new MalformedSignatureError(`signature-input must be exactly one ${NODE_SIGNATURE_LABEL}=(...) member with string or integer parameters`);
  }
  const [, label, items, paramText] = match as unknown as [string, string, string, string];
  if (label !== NODE_SIGNATURE_LABEL) throw new MalformedSignatureError(`signature label must be "${NODE_SIGNATURE_LABEL}", got "${label}"`);
  const components = items
    .trim()
    .split(/ +/)
    .filter((item) => item !== "")
    .map((item) => {
      const c = COMPONENT.exec(item);
      if (c === null) throw new MalformedSignatureError(`covered component ${item} is not a plain quoted component name`);
      return c[1]!;
    });
  const params = new Map<string, string | number>();
  for (const [, key, str, int] of paramText.matchAll(PARAM)) {
    if (params.has(key!)) throw new MalformedSignatureError(`signature parameter ${key} appears twice`);
    params.set(key!, str ?? Number(int));
  }
  return { components, params };
}

function parseSignature(value: string): Buffer {
  const match = SIGNATURE.exec(value.trim());
  if (match === null) throw new MalformedSignatureError(`signature must be exactly one ${NODE_SIGNATURE_LABEL}=:<base64>: member`);
  const [, label, b64] = match as unknown as [string, string, string];
  if (label !== NODE_SIGNATURE_LABEL) throw new MalformedSignatureError(`signature label must be "${NODE_SIGNATURE_LABEL}", got "${label}"`);
  const bytes = Buffer.from(b64, "base64");
  if (bytes.length !== 64) throw new MalformedSignatureError("signature is not a 64-byte Ed25519 signature");
  return bytes;
}

function checkProfile(parsed: ParsedSignatureInput, url: URL): { keyId: string; created: number; nonce: string } {
  const expected = coveredComponents(url);
  const { components, params } = parsed;
  if (new Set(components).size !== components.length) throw new MalformedSignatureError("a covered component is listed twice");
  const missing = expected.filter((c) => !components.includes(c));
  if (missing.length > 0) throw new MalformedSignatureError(`signature does not cover ${missing.join(", ")}`);
  // "@query" may be covered without a query (its value is then "?"), so dropping a signed query fails the signature.
  const extra = components.filter((c) => !expected.includes(c) && c !== "@query");
  if (extra.length > 0) throw new MalformedSignatureError(`signature covers components outside the profile: ${extra.join(", ")}`);
  const unknown = [...params.keys()].filter((p) => !(SIGNATURE_PARAMS as readonly string[]).includes(p));
  // `expires` in particular is refused: the library would check it against its own clock, not the caller's `now`.
  if (unknown.length > 0) throw new MalformedSignatureError(`unsupported signature parameters: ${unknown.join(", ")}`);

  const alg = params.get("alg");
  if (alg !== NODE_SIGNATURE_ALG) throw new MalformedSignatureError(`alg must be "${NODE_SIGNATURE_ALG}"`);
  const keyId = params.get("keyid");
  if (typeof keyId !== "string" || !isBase64UrlOfLength(keyId, 32)) throw new MalformedSignatureError("keyid must be a node key thumbprint");
  const created = params.get("created");
  if (typeof created !== "number" || created < 0) throw new MalformedSignatureError("created must be a non-negative integer");
  const nonce = params.get("nonce");
  if (typeof nonce !== "string" || !NONCE.test(nonce)) throw new MalformedSignatureError("nonce must be 16-128 base64url characters");
  return { keyId, created, nonce };
}

function checkDigest(header: string, body: Body): void {
  const claimed = parseContentDigest(header).get("sha-256");
  if (claimed === undefined) throw new MalformedSignatureError("content-digest has no sha-256 member");
  const actual = sha256Digest(body);
  if (claimed.length !== actual.length || !timingSafeEqual(claimed, actual)) {
    throw new ContentDigestMismatchError(`body (${bodyBytes(body).length} bytes) does not match its content-digest`);
  }
}

/**
 * Service side. Checks run cheapest and least trusting first: headers, profile, time, key, body digest, signature,
 * and the nonce last so an attacker cannot burn nonces with unsigned requests.
 */
export async function verifyNodeRequest(request: NodeRequest, options: VerifyNodeRequestOptions): Promise<VerifiedNodeRequest> {
  const skew = options.maxSkewSeconds ?? DEFAULT_NODE_REQUEST_SKEW_SECONDS;
  if (!Number.isInteger(skew) || skew < 0 || skew > MAX_SKEW_SECONDS) {
    throw new InvalidArgumentError(`maxSkewSeconds must be an integer from 0 to ${MAX_SKEW_SECONDS}`);
  }
  const now = epochSeconds(options.now, "now");
  const url = toUrl(request.url);

  const signatureInput = headerValue(request.headers, "signature-input");
  const signature = headerValue(request.headers, "signature");
  const digest = headerValue(request.headers, "content-digest");
  const absent = Object.entries({ "signature-input": signatureInput, signature, "content-digest": digest })
    .filter(([, v]) => v === undefined)
    .map(([k]) => k);
  if (signatureInput === undefined || signature === undefined || digest === undefined) throw new MissingSignatureHeadersError(absent);

  const { keyId, created, nonce } = checkProfile(parseSignatureInput(signatureInput), url);
  parseSignature(signature);
  if (created < now - skew) {
    throw new StaleSignatureError(
      `request signed at ${new Date(created * 1000).toISOString()} is older than the ${skew}s allowed; re-sign it or check the node's clock`,
    );
  }
  if (created > now + skew) {
    throw new FutureSignatureError(
      `request signed at ${new Date(created * 1000).toISOString()} is more than ${skew}s ahead of the service clock; check the node's clock`,
    );
  }

  const publicKey = await options.lookupPublicKey(keyId);
  if (publicKey === undefined) throw new UnknownKeyError(keyId);
  assertEd25519(publicKey, "any", `registered key ${keyId}`);

  checkDigest(digest, request.body);

  const verifyingKey: VerifyingKey = {
    id: keyId,
    algs: [NODE_SIGNATURE_ALG],
    verify: async (data, sig) => {
      try {
        return verify(null, data, publicKey, sig);
      } catch {
        return false;
      }
    },
  };
  let verified: boolean | null;
  try {
    verified = await httpbis.verifyMessage(
      {
        keyLookup: async (params) => (params.keyid === keyId ? verifyingKey : null),
        requiredParams: [...SIGNATURE_PARAMS],
        requiredFields: coveredComponents(url),
        // Time was checked above against the caller's clock; this only stops the library defaulting to Date.now().
        notAfter: now + skew,
      },
      { method: request.method, url, headers: { "signature-input": signatureInput, signature, "content-digest": digest } },
    );
  } catch (cause) {
    if (cause instanceof ContractError) throw cause;
    throw new MalformedSignatureError(`signature headers could not be processed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
  if (verified !== true) throw new BadSignatureError(`request signature does not verify with key ${keyId}: wrong key, or method, path or query changed`);

  if (options.nonceStore !== undefined) {
    const fresh = await options.nonceStore.claim({ keyId, nonce, expiresAt: new Date((created + skew) * 1000) });
    if (!fresh) throw new ReplayedRequestError(`nonce ${nonce} was already used with key ${keyId}`);
  }
  return { keyId, created: new Date(created * 1000), nonce };
}
