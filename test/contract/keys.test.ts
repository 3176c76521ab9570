import { createPublicKey, generateKeyPairSync, sign, verify } from "node:crypto";
import { describe, expect, it } from "vitest";
import { exportPublicKey, importPublicKey, InvalidKeyError, KeyIdSchema, keyIdOf, PublicKeySchema } from "../../contract/index.js";
import { node, thrown } from "./fixtures.js";

// RFC 8037 Appendix A: the Ed25519 example key and its RFC 7638 thumbprint.
const RFC8037_X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
const RFC8037_THUMBPRINT = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k";

describe("keys", () => {
  it("computes the RFC 7638 thumbprint of the RFC 8037 example key", () => {
    expect(keyIdOf(RFC8037_X)).toBe(RFC8037_THUMBPRINT);
    expect(keyIdOf(importPublicKey(RFC8037_X))).toBe(RFC8037_THUMBPRINT);
  });

  it("exports the raw 32-byte key as 43 base64url characters and imports it back to the same key", () => {
    const encoded = exportPublicKey(node.publicKey);
    expect(encoded).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(encoded, "base64url")).toHaveLength(32);
    const imported = importPublicKey(encoded);
    expect(imported.equals(node.publicKey)).toBe(true);
    const signature = sign(null, Buffer.from("x"), node.privateKey);
    expect(verify(null, Buffer.from("x"), imported, signature)).toBe(true);
  });

  it("gives a private key and its public key the same public form and key id", () => {
    expect(exportPublicKey(node.privateKey)).toBe(exportPublicKey(node.publicKey));
    expect(keyIdOf(node.privateKey)).toBe(keyIdOf(createPublicKey(node.privateKey)));
    expect(KeyIdSchema.safeParse(keyIdOf(node.publicKey)).success).toBe(true);
  });

  it("refuses encodings that are not exactly one raw 32-byte key", () => {
    const good = exportPublicKey(node.publicKey);
    for (const bad of [good.slice(1), `${good}A`, `${good.slice(0, 42)}=`, good.replace(/.$/, "B"), `${good.slice(0, 42)}+`, ""]) {
      if (bad === good) continue;
      expect(PublicKeySchema.safeParse(bad).success, bad).toBe(false);
      expect(
        thrown(() => importPublicKey(bad)),
        bad,
      ).toBeInstanceOf(InvalidKeyError);
    }
  });

  it("refuses keys that are not Ed25519", () => {
    const { publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const error = thrown(() => exportPublicKey(publicKey));
    expect(error).toBeInstanceOf(InvalidKeyError);
    expect((error as InvalidKeyError).code).toBe("invalid_key");
  });
});
