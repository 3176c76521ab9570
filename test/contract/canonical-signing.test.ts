import { verify } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  BadSignatureError,
  canonicalSigningInput,
  keyIdOf,
  NonJsonValueError,
  sealMessage,
  signCanonical,
  SIGNING_DOMAINS,
  verifyCanonical,
  verifySealedMessage,
  type JsonObject,
} from "../../contract/index.js";
import { hasProtoKey, node, overTheWire, thrown } from "./fixtures.js";

describe("canonical signing", () => {
  it("signs domain, a newline and the RFC 8785 form, whatever the key order", () => {
    const input = canonicalSigningInput("flexnode/test/v1", { b: [1, "é", true], a: { d: null, c: 1.5e-7 } });
    expect(input.toString("utf8")).toBe('flexnode/test/v1\n{"a":{"c":1.5e-7,"d":null},"b":[1,"é",true]}');
    const signature = signCanonical({ domain: "flexnode/test/v1", value: { a: { c: 1.5e-7, d: null }, b: [1, "é", true] }, privateKey: node.privateKey });
    expect(verify(null, input, node.publicKey, Buffer.from(signature, "base64url"))).toBe(true);
  });

  it("does not verify a signature under another domain", () => {
    const value = { hello: "world" };
    const signature = signCanonical({ domain: SIGNING_DOMAINS.stepEnvelope, value, privateKey: node.privateKey });
    expect(verifyCanonical({ domain: SIGNING_DOMAINS.stepEnvelope, value, signature, publicKey: node.publicKey })).toBe(true);
    expect(verifyCanonical({ domain: SIGNING_DOMAINS.stepResult, value, signature, publicKey: node.publicKey })).toBe(false);
  });

  it("covers the signature's alg and keyId, so they cannot be swapped after sealing", () => {
    const sealed = sealMessage({ domain: "flexnode/test/v1", message: { n: 1 }, privateKey: node.privateKey });
    expect(sealed.signature.keyId).toBe(keyIdOf(node.publicKey));
    const covered = canonicalSigningInput("flexnode/test/v1", { n: 1, signature: { alg: "ed25519", keyId: sealed.signature.keyId } });
    expect(verify(null, covered, node.publicKey, Buffer.from(sealed.signature.value, "base64url"))).toBe(true);
    const error = thrown(() => verifySealedMessage({ domain: "flexnode/test/v1", message: { ...sealed, n: 2 }, publicKey: node.publicKey }));
    expect(error).toBeInstanceOf(BadSignatureError);
  });

  it("signs and verifies arbitrary JSON, also after a trip over the wire", () => {
    fc.assert(
      fc.property(fc.jsonValue({ stringUnit: "grapheme" }), (value) => {
        fc.pre(!hasProtoKey(value));
        const signature = signCanonical({ domain: "flexnode/test/v1", value, privateKey: node.privateKey });
        expect(verifyCanonical({ domain: "flexnode/test/v1", value: overTheWire(value), signature, publicKey: node.publicKey })).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  class Widget {
    readonly n = 1;
  }
  const sparse: unknown[] = [1];
  sparse[2] = 3;
  const cyclic: Record<string, unknown> = {};
  cyclic["self"] = cyclic;
  const protoKey: unknown = JSON.parse('{"__proto__": 1}');
  const notJson = fc.constantFrom<[string, unknown]>(
    ["undefined", undefined],
    ["NaN", Number.NaN],
    ["Infinity", Number.POSITIVE_INFINITY],
    ["-Infinity", Number.NEGATIVE_INFINITY],
    ["function", () => 1],
    ["symbol", Symbol("s")],
    ["bigint", 10n],
    ["Date", new Date(0)],
    ["Map", new Map([["a", 1]])],
    ["class instance", new Widget()],
    ["sparse array", sparse],
    ["cycle", cyclic],
    ["lone surrogate", "a\uD800b"],
    ["__proto__ key", protoKey],
  );

  it("refuses values canonical JSON cannot represent faithfully, wherever they sit", () => {
    fc.assert(
      fc.property(
        fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 2 }), { noNullPrototype: true }),
        fc.array(fc.string({ minLength: 1 }), { maxLength: 3 }),
        notJson,
        (base, path, [, bad]) => {
          // Nest the bad value under `path` inside an otherwise valid object.
          let nested: unknown = bad;
          for (const key of [...path].reverse()) nested = { [key]: nested };
          const value = { ...base, slot: nested };
          const error = thrown(() => signCanonical({ domain: "flexnode/test/v1", value, privateKey: node.privateKey }));
          expect(error).toBeInstanceOf(NonJsonValueError);
          expect((error as NonJsonValueError).code).toBe("non_json_value");
        },
      ),
      { numRuns: 200 },
    );
  });

  it("names where the offending value is", () => {
    const error = thrown(() => canonicalSigningInput("flexnode/test/v1", { a: [{ "x/y": undefined }] } as unknown as JsonObject));
    expect((error as NonJsonValueError).path).toBe("/a/0/x~1y");
  });
});
