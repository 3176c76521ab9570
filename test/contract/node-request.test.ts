import { createHash, verify, type KeyObject } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  BadSignatureError,
  ContentDigestMismatchError,
  contentDigest,
  FutureSignatureError,
  keyIdOf,
  MalformedSignatureError,
  MissingSignatureHeadersError,
  ReplayedRequestError,
  signNodeRequest,
  StaleSignatureError,
  UnknownKeyError,
  verifyNodeRequest,
  type NodeRequest,
  type NonceClaim,
  type NonceStore,
  type VerifyNodeRequestOptions,
} from "../../contract/index.js";
import { intruder, node, rejected } from "./fixtures.js";

const NODE_KEY_ID = keyIdOf(node.publicKey);
const SIGNED_AT = new Date("2025-03-01T12:00:00.000Z");
const CREATED = SIGNED_AT.getTime() / 1000;
const NONCE = "n0nce-n0nce-n0nce-0001";
const registry = new Map<string, KeyObject>([[NODE_KEY_ID, node.publicKey]]);

const request: NodeRequest = {
  method: "POST",
  url: "https://flexnode.example.net/api/node/credentials?scope=mailbox",
  body: JSON.stringify({ nodeId: "node-7f3c2a" }),
};

function options(overrides: Partial<VerifyNodeRequestOptions> = {}): VerifyNodeRequestOptions {
  return { lookupPublicKey: (keyId) => registry.get(keyId), now: new Date(SIGNED_AT.getTime() + 5_000), ...overrides };
}

async function signed(req: NodeRequest = request, privateKey: KeyObject = node.privateKey, now: Date = SIGNED_AT) {
  const headers = await signNodeRequest(req, { privateKey, now, nonce: NONCE });
  return { ...req, headers: { "content-type": "application/json", ...headers } };
}

/** A map-backed NonceStore, as the service would back one with an insert-only table. */
function memoryNonceStore(): NonceStore & { claims: NonceClaim[] } {
  const seen = new Set<string>();
  const claims: NonceClaim[] = [];
  return {
    claims,
    claim(entry) {
      claims.push(entry);
      const key = `${entry.keyId}/${entry.nonce}`;
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    },
  };
}

describe("node request signatures", () => {
  it("produces the RFC 9421 headers of the profile", async () => {
    const headers = await signNodeRequest(request, { keyId: NODE_KEY_ID, privateKey: node.privateKey, now: SIGNED_AT, nonce: NONCE });
    const digest = createHash("sha256")
      .update(request.body as string, "utf8")
      .digest("base64");
    expect(headers["content-digest"]).toBe(`sha-256=:${digest}:`);
    expect(headers["signature-input"]).toBe(
      `flexnode=("@method" "@path" "@query" "content-digest");created=${CREATED};keyid="${NODE_KEY_ID}";alg="ed25519";nonce="${NONCE}"`,
    );
    expect(headers.signature).toMatch(/^flexnode=:[A-Za-z0-9+/]{86}==:$/);

    // The signature base rebuilt by hand from RFC 9421 §2.5, independent of the library.
    const base = [
      `"@method": POST`,
      `"@path": /api/node/credentials`,
      `"@query": ?scope=mailbox`,
      `"content-digest": sha-256=:${digest}:`,
      `"@signature-params": ${headers["signature-input"].slice("flexnode=".length)}`,
    ].join("\n");
    const signatureBytes = Buffer.from(headers.signature.slice("flexnode=:".length, -1), "base64");
    expect(verify(null, Buffer.from(base), node.publicKey, signatureBytes)).toBe(true);
  });

  it("verifies a valid request and reports who signed it and when", async () => {
    const verified = await verifyNodeRequest(await signed(), options());
    expect(verified).toEqual({ keyId: NODE_KEY_ID, created: SIGNED_AT, nonce: NONCE });
  });

  it("accepts header names in any case and a fetch-style Headers object", async () => {
    const req = await signed();
    const upper = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k.toUpperCase(), v]));
    await expect(verifyNodeRequest({ ...req, headers: upper }, options())).resolves.toMatchObject({ keyId: NODE_KEY_ID });
    await expect(verifyNodeRequest({ ...req, headers: new Headers(req.headers) }, options())).resolves.toMatchObject({ keyId: NODE_KEY_ID });
  });

  it("signs a bodiless GET with the digest of the empty body and no @query", async () => {
    const get: NodeRequest = { method: "GET", url: "/api/node/secrets/bootstrap-7f3c2a" };
    const headers = await signNodeRequest(get, { privateKey: node.privateKey, now: SIGNED_AT });
    expect(headers["content-digest"]).toBe("sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:");
    expect(headers["signature-input"]).toMatch(/^flexnode=\("@method" "@path" "content-digest"\);/);
    // Signed against a path, verified against the absolute URL the Functions host reports.
    const verified = await verifyNodeRequest({ ...get, url: `https://internal.azurewebsites.net${get.url as string}`, headers }, options());
    expect(verified.keyId).toBe(NODE_KEY_ID);
    expect(verified.nonce).toMatch(/^[A-Za-z0-9_-]{22}$/);
  });

  it("rejects a tampered body as a content-digest mismatch", async () => {
    const req = await signed();
    const error = await rejected(verifyNodeRequest({ ...req, body: JSON.stringify({ nodeId: "node-other" }) }, options()));
    expect(error).toBeInstanceOf(ContentDigestMismatchError);
    expect((error as ContentDigestMismatchError).code).toBe("content_digest_mismatch");
  });

  it("rejects a tampered body with a recomputed digest as a bad signature (the digest is signed)", async () => {
    const req = await signed();
    const body = JSON.stringify({ nodeId: "node-other" });
    const error = await rejected(verifyNodeRequest({ ...req, body, headers: { ...req.headers, "content-digest": contentDigest(body) } }, options()));
    expect(error).toBeInstanceOf(BadSignatureError);
  });

  it("rejects a tampered method, path or query as a bad signature", async () => {
    const req = await signed();
    for (const changed of [
      { method: "PUT" },
      { url: "https://flexnode.example.net/api/node/secrets?scope=mailbox" },
      { url: "https://flexnode.example.net/api/node/credentials?scope=admin" },
      { url: "https://flexnode.example.net/api/node/credentials?scope=mailbox&x=1" },
      { url: "https://flexnode.example.net/api/node/credentials" },
    ]) {
      const error = await rejected(verifyNodeRequest({ ...req, ...changed }, options()));
      expect(error, JSON.stringify(changed)).toBeInstanceOf(BadSignatureError);
    }
  });

  it("refuses a query added to a request signed without one", async () => {
    const req = await signed({ method: "POST", url: "/api/node/credentials", body: "{}" });
    const error = await rejected(verifyNodeRequest({ ...req, url: "/api/node/credentials?scope=admin" }, options()));
    expect(error).toBeInstanceOf(MalformedSignatureError);
    expect((error as Error).message).toMatch(/does not cover @query/);
  });

  it("rejects a request signed with another key", async () => {
    // The intruder signs, then claims the node's key id: the signature params change and nothing verifies.
    const forged = await signed(request, intruder.privateKey);
    const claimed = { ...forged.headers, "signature-input": forged.headers["signature-input"].replace(keyIdOf(intruder.publicKey), NODE_KEY_ID) };
    expect(await rejected(verifyNodeRequest({ ...forged, headers: claimed }, options()))).toBeInstanceOf(BadSignatureError);
    // And a registry that maps the node's key id to a different key refuses the genuine request.
    const wrongRegistry = options({ lookupPublicKey: () => intruder.publicKey });
    expect(await rejected(verifyNodeRequest(await signed(), wrongRegistry))).toBeInstanceOf(BadSignatureError);
  });

  it("rejects an unknown key id, with the key id", async () => {
    const req = await signed(request, intruder.privateKey);
    const error = await rejected(verifyNodeRequest(req, options({ lookupPublicKey: async () => undefined })));
    expect(error).toBeInstanceOf(UnknownKeyError);
    expect(error).toMatchObject({ code: "unknown_key", keyId: keyIdOf(intruder.publicKey) });
  });

  it("rejects a stale created older than the skew, and accepts one just inside it", async () => {
    const req = await signed();
    await expect(verifyNodeRequest(req, options({ now: new Date(SIGNED_AT.getTime() + 120_999) }))).resolves.toBeDefined();
    const error = await rejected(verifyNodeRequest(req, options({ now: new Date(SIGNED_AT.getTime() + 121_000) })));
    expect(error).toBeInstanceOf(StaleSignatureError);
    expect((error as StaleSignatureError).code).toBe("signature_too_old");
    expect(await rejected(verifyNodeRequest(req, options({ now: new Date(SIGNED_AT.getTime() + 31_000), maxSkewSeconds: 30 })))).toBeInstanceOf(
      StaleSignatureError,
    );
  });

  it("rejects a created too far in the future", async () => {
    const req = await signed(request, node.privateKey, new Date(SIGNED_AT.getTime() + 121_000));
    const error = await rejected(verifyNodeRequest(req, options({ now: SIGNED_AT })));
    expect(error).toBeInstanceOf(FutureSignatureError);
    expect((error as FutureSignatureError).code).toBe("signature_in_future");
  });

  it("rejects a replay of an old request once the skew window has passed", async () => {
    const req = await signed();
    const captured = structuredClone(req);
    await expect(verifyNodeRequest(req, options())).resolves.toBeDefined();
    const replay = await rejected(verifyNodeRequest(captured, options({ now: new Date(SIGNED_AT.getTime() + 10 * 60_000) })));
    expect(replay).toBeInstanceOf(StaleSignatureError);
  });

  it("bounds but does not prevent a replay inside the window, unless a nonce store is used", async () => {
    const req = await signed();
    await verifyNodeRequest(req, options());
    await expect(verifyNodeRequest(req, options())).resolves.toBeDefined();

    const nonceStore = memoryNonceStore();
    await verifyNodeRequest(req, options({ nonceStore }));
    expect(nonceStore.claims[0]).toEqual({ keyId: NODE_KEY_ID, nonce: NONCE, expiresAt: new Date(SIGNED_AT.getTime() + 120_000) });
    const error = await rejected(verifyNodeRequest(req, options({ nonceStore })));
    expect(error).toBeInstanceOf(ReplayedRequestError);
  });

  it("does not spend a nonce on a request that fails verification", async () => {
    const nonceStore = memoryNonceStore();
    const req = await signed();
    await rejected(verifyNodeRequest({ ...req, method: "DELETE" }, options({ nonceStore })));
    expect(nonceStore.claims).toEqual([]);
    await expect(verifyNodeRequest(req, options({ nonceStore }))).resolves.toBeDefined();
  });

  it("reports missing signature headers by name", async () => {
    const req = await signed();
    const none = await rejected(verifyNodeRequest({ ...request, headers: { "content-type": "application/json" } }, options()));
    expect(none).toBeInstanceOf(MissingSignatureHeadersError);
    expect(none).toMatchObject({ code: "missing_signature_headers", missing: ["signature-input", "signature", "content-digest"] });
    for (const name of ["signature-input", "signature", "content-digest"] as const) {
      const { [name]: _dropped, ...rest } = req.headers;
      const error = await rejected(verifyNodeRequest({ ...req, headers: rest }, options()));
      expect(error, name).toBeInstanceOf(MissingSignatureHeadersError);
      expect((error as MissingSignatureHeadersError).missing).toEqual([name]);
    }
  });

  it("refuses signature headers outside the profile as malformed", async () => {
    const req = await signed();
    const input = req.headers["signature-input"];
    const variants: Record<string, string>[] = [
      { "signature-input": "garbage" },
      { signature: "flexnode=:bm90IGEgc2lnbmF0dXJl:" },
      { "signature-input": input.replace("flexnode=", "sig1=") },
      { "signature-input": `${input}, other=("@method");created=1;keyid="x";alg="ed25519";nonce="n0nce-n0nce-n0nce-0001"` },
      { "signature-input": input.replace('alg="ed25519"', 'alg="hmac-sha256"') },
      { "signature-input": `${input};expires=${CREATED + 60}` },
      { "signature-input": input.replace('"@method" ', "") },
      { "signature-input": input.replace('"content-digest"', '"content-digest" "content-type"') },
      { "signature-input": input.replace(/;nonce="[^"]*"/, "") },
      { "content-digest": "sha-512=:AAAA:" },
    ];
    for (const variant of variants) {
      const error = await rejected(verifyNodeRequest({ ...req, headers: { ...req.headers, ...variant } }, options()));
      expect(error, JSON.stringify(variant)).toBeInstanceOf(MalformedSignatureError);
    }
    // Two Signature field lines combine into a two-member dictionary, which the profile refuses.
    const doubled = { ...req.headers, signature: [req.headers.signature, req.headers.signature] };
    expect(await rejected(verifyNodeRequest({ ...req, headers: doubled }, options()))).toBeInstanceOf(MalformedSignatureError);
  });

  it("digests the body bytes exactly as sent, non-ASCII included", async () => {
    const text = "größe ✓ 🚀 ﬁ";
    const bytes = Buffer.concat([Buffer.from(text, "utf8"), Buffer.from([0xff, 0x00, 0xc3])]);
    const req = await signed({ method: "POST", url: "/api/node/report", body: bytes });
    expect(req.headers["content-digest"]).toBe(`sha-256=:${createHash("sha256").update(bytes).digest("base64")}:`);
    await expect(verifyNodeRequest(req, options())).resolves.toBeDefined();
    // As the Functions host hands it over: `await request.arrayBuffer()`.
    const arrayBuffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    await expect(verifyNodeRequest({ ...req, body: arrayBuffer }, options())).resolves.toBeDefined();
    // The same body decoded and re-encoded as text is different bytes, and is caught.
    const reencoded = await rejected(verifyNodeRequest({ ...req, body: bytes.toString("utf8") }, options()));
    expect(reencoded).toBeInstanceOf(ContentDigestMismatchError);

    // A string body is signed as its UTF-8 bytes: the service verifying the raw bytes agrees, Latin-1 does not.
    const textReq = await signed({ method: "POST", url: "/api/node/report", body: text });
    await expect(verifyNodeRequest({ ...textReq, body: Buffer.from(text, "utf8") }, options())).resolves.toBeDefined();
    expect(await rejected(verifyNodeRequest({ ...textReq, body: Buffer.from(text, "latin1") }, options()))).toBeInstanceOf(ContentDigestMismatchError);
  });
});
