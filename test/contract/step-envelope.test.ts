import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import {
  BadSignatureError,
  buildStepEnvelope,
  EnvelopeExpiredError,
  EnvelopeNotYetValidError,
  findSecrets,
  keyIdOf,
  MessageSchemaError,
  SecretInMessageError,
  STEP_KINDS,
  stepEnvelopeSchemaFor,
  UnsupportedVersionError,
  verifyStepEnvelope,
  WrongNodeError,
  type JsonObject,
  type StepEnvelope,
} from "../../contract/index.js";
import { ed25519, envelopeInput, EXPIRES_AT, hasProtoKey, ISSUED_AT, NODE_ID, NOW, overTheWire, service, thrown } from "./fixtures.js";

const verifyOptions = { servicePublicKey: service.publicKey, nodeId: NODE_ID, now: NOW };
const signer = { privateKey: service.privateKey };

function build(overrides: Parameters<typeof envelopeInput>[0] = {}): StepEnvelope {
  return buildStepEnvelope(envelopeInput(overrides), signer);
}

/** Rebuilds every object with its keys in reverse order, recursively. */
function reverseKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(reverseKeys);
  if (typeof value !== "object" || value === null) return value;
  return Object.fromEntries(
    Object.entries(value)
      .reverse()
      .map(([k, v]) => [k, reverseKeys(v)]),
  );
}

describe("StepEnvelope", () => {
  it("round-trips: what the service signs, the agent verifies and gets back unchanged", () => {
    const envelope = build();
    expect(envelope.version).toBe(1);
    expect(envelope.issuedAt).toBe("2025-03-01T12:00:00.000Z");
    expect(envelope.signature).toMatchObject({ alg: "ed25519", keyId: keyIdOf(service.publicKey) });
    expect(verifyStepEnvelope(overTheWire(envelope), verifyOptions)).toEqual(envelope);
  });

  it("verifies whatever order the keys arrive in (canonical JSON)", () => {
    const envelope = build();
    const reordered = reverseKeys(overTheWire(envelope));
    expect(Object.keys(reordered as object)[0]).toBe("signature");
    expect(verifyStepEnvelope(reordered, verifyOptions)).toEqual(envelope);
  });

  it("fails verification when any signed field is changed", () => {
    const original = build();
    const otherKeyId = keyIdOf(ed25519().publicKey);
    const id = fc.stringMatching(/^[a-z0-9:-]{1,24}$/);
    const shiftIso = (iso: string, seconds: number) => new Date(Date.parse(iso) + seconds * 1000).toISOString();
    type Mutation = [string, (e: StepEnvelope) => StepEnvelope];
    const mutation = fc.oneof(
      fc.tuple(fc.constantFrom("nodeId", "sagaId", "stepId"), id).map(([field, value]): Mutation => [field, (e) => ({ ...e, [field]: value })]),
      fc.integer({ min: 1, max: 1_000_000 }).map((attempt): Mutation => ["attempt", (e) => ({ ...e, attempt })]),
      fc.constantFrom(...STEP_KINDS).map((kind): Mutation => ["kind", (e) => ({ ...e, kind })]),
      fc
        .tuple(fc.string(), fc.jsonValue())
        .filter(([key, value]) => key !== "__proto__" && !hasProtoKey(value))
        .map(([key, value]): Mutation => ["params", (e) => ({ ...e, params: { ...e.params, [key]: value } as JsonObject })]),
      fc.integer({ min: 1, max: 86_400 }).map((s): Mutation => ["issuedAt", (e) => ({ ...e, issuedAt: shiftIso(e.issuedAt, -s) })]),
      fc.integer({ min: 1, max: 86_400 }).map((s): Mutation => ["expiresAt", (e) => ({ ...e, expiresAt: shiftIso(e.expiresAt, s) })]),
      fc.constant<Mutation>(["signature.keyId", (e) => ({ ...e, signature: { ...e.signature, keyId: otherKeyId } })]),
      fc.tuple(fc.integer({ min: 0, max: 63 }), fc.integer({ min: 1, max: 255 })).map(([index, mask]): Mutation => [
        "signature.value",
        (e) => {
          const bytes = Buffer.from(e.signature.value, "base64url");
          bytes[index] = bytes[index]! ^ mask;
          return { ...e, signature: { ...e.signature, value: bytes.toString("base64url") } };
        },
      ]),
    );
    fc.assert(
      fc.property(mutation, ([, mutate]) => {
        const tampered = mutate(structuredClone(original));
        // Mutations that happen to reproduce the original (same kind, same param value) change nothing to detect.
        fc.pre(JSON.stringify(reverseKeys(tampered)) !== JSON.stringify(reverseKeys(original)));
        expect(thrown(() => verifyStepEnvelope(overTheWire(tampered), verifyOptions))).toBeInstanceOf(BadSignatureError);
      }),
      { numRuns: 300 },
    );
  });

  it("fails verification against a different service key", () => {
    const error = thrown(() => verifyStepEnvelope(overTheWire(build()), { ...verifyOptions, servicePublicKey: ed25519().publicKey }));
    expect(error).toBeInstanceOf(BadSignatureError);
    expect((error as BadSignatureError).code).toBe("bad_signature");
  });

  it("fails verification when signed by another key claiming the service's key id", () => {
    const forged = buildStepEnvelope(envelopeInput(), { privateKey: ed25519().privateKey });
    const claimed = { ...forged, signature: { ...forged.signature, keyId: keyIdOf(service.publicKey) } };
    expect(thrown(() => verifyStepEnvelope(overTheWire(claimed), verifyOptions))).toBeInstanceOf(BadSignatureError);
  });

  it("is refused once expired, allowing the bounded clock skew", () => {
    const envelope = overTheWire(build());
    const at = (ms: number) => ({ ...verifyOptions, now: new Date(EXPIRES_AT.getTime() + ms) });
    expect(verifyStepEnvelope(envelope, at(60_000))).toBeDefined();
    const error = thrown(() => verifyStepEnvelope(envelope, at(60_001)));
    expect(error).toBeInstanceOf(EnvelopeExpiredError);
    expect((error as EnvelopeExpiredError).code).toBe("envelope_expired");
    expect(thrown(() => verifyStepEnvelope(envelope, { ...at(10_001), maxSkewSeconds: 10 }))).toBeInstanceOf(EnvelopeExpiredError);
  });

  it("is refused when issued further in the future than the skew (node clock behind)", () => {
    const envelope = overTheWire(build());
    expect(verifyStepEnvelope(envelope, { ...verifyOptions, now: new Date(ISSUED_AT.getTime() - 60_000) })).toBeDefined();
    expect(thrown(() => verifyStepEnvelope(envelope, { ...verifyOptions, now: new Date(ISSUED_AT.getTime() - 60_001) }))).toBeInstanceOf(
      EnvelopeNotYetValidError,
    );
  });

  it("is refused by any node other than the one it is addressed to", () => {
    const error = thrown(() => verifyStepEnvelope(overTheWire(build()), { ...verifyOptions, nodeId: "node-other" }));
    expect(error).toBeInstanceOf(WrongNodeError);
    expect(error).toMatchObject({ code: "wrong_node", expectedNodeId: "node-other", actualNodeId: NODE_ID });
  });

  it("refuses a newer version with an upgrade-the-agent message, before looking at anything else", () => {
    const newer = { ...(overTheWire(build()) as object), version: 2, someFieldV2Added: { x: 1 } };
    const error = thrown(() => verifyStepEnvelope(newer, verifyOptions));
    expect(error).toBeInstanceOf(UnsupportedVersionError);
    expect(error).toMatchObject({ code: "unsupported_version", problem: "newer", received: 2, supported: [1] });
    expect((error as Error).message).toMatch(/StepEnvelope version 2 is newer than this flexnode-agent understands/);
    expect((error as Error).message).toMatch(/Upgrade flexnode-agent/);
    // Even a shape the agent has never seen gets the version message, not a schema complaint.
    expect(thrown(() => verifyStepEnvelope({ version: 3, totally: "different" }, verifyOptions))).toBeInstanceOf(UnsupportedVersionError);
  });

  it("refuses an older or unrecognisable version clearly", () => {
    const base = overTheWire(build()) as Record<string, unknown>;
    expect(thrown(() => verifyStepEnvelope({ ...base, version: 0 }, verifyOptions))).toMatchObject({
      problem: "older",
      message: expect.stringMatching(/older than/),
    });
    const { version: _dropped, ...unversioned } = base;
    for (const raw of [unversioned, { ...base, version: "1" }, { ...base, version: 1.5 }]) {
      const error = thrown(() => verifyStepEnvelope(raw, verifyOptions));
      expect(error).toBeInstanceOf(UnsupportedVersionError);
      expect(error).toMatchObject({ problem: "unrecognised", message: expect.stringMatching(/no recognisable version/) });
    }
    expect(thrown(() => verifyStepEnvelope("not an object", verifyOptions))).toBeInstanceOf(MessageSchemaError);
  });

  it("carries the onboarding's traceparent under the signature, and refuses a malformed one", () => {
    const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const envelope = build({ traceparent });
    expect(verifyStepEnvelope(overTheWire(envelope), verifyOptions).traceparent).toBe(traceparent);
    const moved = { ...envelope, traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b8-01" };
    expect(thrown(() => verifyStepEnvelope(overTheWire(moved), verifyOptions))).toBeInstanceOf(BadSignatureError);
    const { traceparent: _dropped, ...stripped } = envelope;
    expect(thrown(() => verifyStepEnvelope(overTheWire(stripped), verifyOptions))).toBeInstanceOf(BadSignatureError);
    expect(build().traceparent).toBeUndefined();
    for (const bad of ["01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", `00-${"0".repeat(32)}-00f067aa0ba902b7-01`, "00-abc-def-01"])
      expect(thrown(() => build({ traceparent: bad }))).toBeInstanceOf(MessageSchemaError);
  });

  it("refuses an unknown top-level field even though the rest is intact", () => {
    const error = thrown(() => verifyStepEnvelope({ ...(overTheWire(build()) as object), priority: "high" }, verifyOptions));
    expect(error).toBeInstanceOf(MessageSchemaError);
    expect((error as MessageSchemaError).message).toMatch(/priority/);
  });

  it("refuses a malformed field with its path", () => {
    const raw = { ...(overTheWire(build()) as object), attempt: 0 };
    const error = thrown(() => verifyStepEnvelope(raw, verifyOptions));
    expect(error).toBeInstanceOf(MessageSchemaError);
    expect((error as MessageSchemaError).issues[0]?.path).toBe("/attempt");
  });

  it("refuses to build an envelope that would never be valid", () => {
    const error = thrown(() => build({ expiresAt: ISSUED_AT }));
    expect(error).toBeInstanceOf(MessageSchemaError);
    expect((error as MessageSchemaError).issues[0]?.path).toBe("/expiresAt");
  });

  it("checks per-kind params after the signature when the agent supplies their schemas", () => {
    const SysctlParams = z.strictObject({ settings: z.record(z.string(), z.string()), persist: z.boolean() });
    const envelope = overTheWire(build());
    expect(verifyStepEnvelope(envelope, { ...verifyOptions, paramsSchemas: { sysctl: SysctlParams } }).params).toEqual(envelopeInput().params);
    const strictOther = z.strictObject({ settings: z.record(z.string(), z.number()) });
    const error = thrown(() => verifyStepEnvelope(envelope, { ...verifyOptions, paramsSchemas: { sysctl: strictOther } }));
    expect(error).toBeInstanceOf(MessageSchemaError);
    expect((error as MessageSchemaError).issues.map((i) => i.path)).toContain("/params/settings/net.ipv4.ip_forward");

    const sysctlEnvelope = stepEnvelopeSchemaFor("sysctl", SysctlParams);
    expect(sysctlEnvelope.safeParse(envelope).success).toBe(true);
    expect(sysctlEnvelope.safeParse({ ...(envelope as object), kind: "reset" }).success).toBe(false);
    expect(sysctlEnvelope.safeParse({ ...(envelope as object), extra: 1 }).success).toBe(false);
  });

  it("signs and verifies arbitrary JSON params", () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue({ stringUnit: "grapheme" })), (params) => {
        fc.pre(findSecrets(params).length === 0 && !hasProtoKey(params));
        // fast-check types its arrays readonly; the values are plain JSON.
        const envelope = buildStepEnvelope(envelopeInput({ params: params as JsonObject }), signer);
        expect(verifyStepEnvelope(overTheWire(envelope), verifyOptions).params).toEqual(overTheWire(params));
      }),
      { numRuns: 200 },
    );
  });
});

describe("secrets in envelopes", () => {
  const secretForms: [string, JsonObject, string][] = [
    ["bootstrap token", { kubeconfig: { user: "token: abcdef.0123456789abcdef\n" } }, "/params/kubeconfig/user"],
    ["SAS token", { queue: "SharedAccessSignature sr=sb%3a%2f%2fns&sig=abc%3d&se=1&skn=listen" }, "/params/queue"],
    ["SAS connection string", { conn: "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=a;SharedAccessKey=b=" }, "/params/conn"],
    ["storage SAS URL", { url: "https://acct.blob.core.windows.net/c/agent.raw?sv=2024-01-01&sr=b&sig=AbCd%2B" }, "/params/url"],
    [
      "PEM private key",
      { files: [{ path: "/etc/x.key", content: "-----BEGIN PRIVATE KEY-----\nMC4CAQ==\n-----END PRIVATE KEY-----\n" }] },
      "/params/files/0/content",
    ],
    ["JWT", { header: "Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJub2RlIn0.c2ln" }, "/params/header"],
    ["password field", { db: { password: "hunter2" } }, "/params/db/password"],
    ["clientSecret field", { clientSecret: "x" }, "/params/clientSecret"],
    ["token field", { bootstrap_token: "opaque" }, "/params/bootstrap_token"],
    ["key field", { apiKey: "opaque" }, "/params/apiKey"],
    ["private key field", { "private-key": "opaque" }, "/params/private-key"],
    ["array of tokens", { tokens: ["a", "b"] }, "/params/tokens/0"],
  ];

  it.each(secretForms)("refuses to build an envelope carrying a %s, naming the field but not the value", (_name, params, path) => {
    const error = thrown(() => buildStepEnvelope(envelopeInput({ kind: "writeFiles", params }), signer));
    expect(error).toBeInstanceOf(SecretInMessageError);
    expect((error as SecretInMessageError).code).toBe("secret_in_message");
    expect((error as SecretInMessageError).findings.map((f) => f.path)).toContain(path);
    for (const s of ["hunter2", "0123456789abcdef", "MC4CAQ", "AbCd%2B", "opaque"]) expect((error as Error).message).not.toContain(s);
  });

  it("scans the whole envelope, not only params", () => {
    const error = thrown(() => build({ stepId: "retry-with-abcdef.0123456789abcdef" }));
    expect(error).toBeInstanceOf(SecretInMessageError);
    expect((error as SecretInMessageError).findings).toEqual([{ path: "/stepId", kind: "bootstrap-token" }]);
  });

  it("flags each secret form with its kind", () => {
    expect(findSecrets("abcdef.0123456789abcdef")).toEqual([{ path: "", kind: "bootstrap-token" }]);
    expect(findSecrets({ a: "SharedAccessSignature sr=x&sig=y" })).toEqual([{ path: "/a", kind: "shared-access-signature" }]);
    // Certificates are public (the cluster CA travels in a plan); every other PEM block is refused.
    expect(findSecrets({ a: ["-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"] })).toEqual([]);
    for (const label of ["PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY", "OPENSSH PRIVATE KEY", "CERTIFICATE REQUEST"]) {
      expect(findSecrets({ a: [`-----BEGIN ${label}-----`] })).toEqual([{ path: "/a/0", kind: "pem-block" }]);
    }
    expect(findSecrets({ a: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n-----BEGIN PRIVATE KEY-----\n" })).toEqual([
      { path: "/a", kind: "pem-block" },
    ]);
    expect(findSecrets({ a: "eyJhbGciOiJFZERTQSJ9.eyJpc3MiOiJzdmMifQ.sig" })).toEqual([{ path: "/a", kind: "jwt" }]);
    expect(findSecrets({ adminPassword: "x" })).toEqual([{ path: "/adminPassword", kind: "secret-named-field" }]);
    expect(findSecrets({ "abcdef.0123456789abcdef": true })).toEqual([{ path: "/abcdef.0123456789abcdef", kind: "bootstrap-token" }]);
  });

  it("leaves ordinary ids, references and step params alone", () => {
    const ordinary = {
      secretId: "kubelet-bootstrap-7f3c2a",
      secretRef: "onboard:node-7f3c2a/bootstrap",
      tokenTtlSeconds: 900,
      tokenGroup: "system:bootstrappers:flexnode:gpu",
      keyId: "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k",
      publicKey: "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
      keyPath: "/var/lib/flexnode/identity.key",
      password: "",
      monkey: "banana",
      keyboardLayout: "us",
      nodeId: "3f1c9a2e-5b7d-4e8f-9a0b-1c2d3e4f5a6b",
      sagaId: "onboard:node-7f3c2a",
      digest: `sha256:${"0".repeat(64)}`,
      url: "https://packages.example.com/kubernetes/v1.31.2/kubelet?arch=amd64",
      host: "abcdef.example.com",
      sysctl: { "kernel.keys.maxkeys": "2000", "net.ipv4.ip_forward": "1" },
      unit: "kubelet.service",
      file: "/etc/kubernetes/bootstrap-kubelet.conf",
      description: "write the bootstrap kubeconfig fetched with fetchSecret",
      signature: { alg: "ed25519", keyId: "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k", value: "A".repeat(86) },
    };
    expect(findSecrets(ordinary)).toEqual([]);
    expect(findSecrets(build())).toEqual([]);
  });
});
