import { describe, expect, it } from "vitest";
import {
  BadSignatureError,
  buildStepEnvelope,
  buildStepResult,
  findSecrets,
  keyIdOf,
  MessageSchemaError,
  parseUnverifiedStepResult,
  sealMessage,
  SecretInMessageError,
  SIGNING_DOMAINS,
  signCanonical,
  UnsupportedVersionError,
  verifyStepResult,
  WrongNodeError,
  type JsonObject,
  type StepResult,
  type StepResultInput,
} from "../../contract/index.js";
import { envelopeInput, failedInput, intruder, MANIFEST_DIGEST, node, NODE_ID, overTheWire, service, succeededInput, thrown } from "./fixtures.js";

const verifyOptions = { nodeId: NODE_ID, nodePublicKey: node.publicKey };
const signer = { privateKey: node.privateKey };

/** The unsigned wire form of a result input, for sealing messages the builder would refuse. */
function unsignedResult(fields: Record<string, unknown>): JsonObject {
  return {
    version: 1,
    nodeId: NODE_ID,
    sagaId: "onboard:node-7f3c2a",
    stepId: "05-sysctl",
    attempt: 1,
    startedAt: "2025-03-01T12:01:00.000Z",
    finishedAt: "2025-03-01T12:01:02.500Z",
    manifestDigest: MANIFEST_DIGEST,
    ...fields,
  } as JsonObject;
}

describe("StepResult", () => {
  it("round-trips a succeeded result", () => {
    const result = buildStepResult(succeededInput(), signer);
    expect(result).toMatchObject({
      version: 1,
      outcome: "succeeded",
      finishedAt: "2025-03-01T12:01:02.500Z",
      signature: { alg: "ed25519", keyId: keyIdOf(node.publicKey) },
    });
    expect(result).not.toHaveProperty("error");
    expect(verifyStepResult(overTheWire(result), verifyOptions)).toEqual(result);
    // A whole signed result passes the queue-message secret scan.
    expect(findSecrets(result)).toEqual([]);
  });

  it("round-trips a failed result with its error and no output", () => {
    const result = buildStepResult(failedInput(), signer);
    expect(result).not.toHaveProperty("output");
    const verified = verifyStepResult(overTheWire(result), verifyOptions);
    expect(verified).toEqual(result);
    expect(verified.outcome === "failed" && verified.error.retryable).toBe(true);
  });

  it("refuses to build a failed result without an error or a succeeded result with one", () => {
    const { error: _error, ...failedWithoutError } = failedInput();
    // Casts: the input type already rules these out; the runtime check is for callers the compiler cannot see.
    const noError = thrown(() => buildStepResult(failedWithoutError as unknown as StepResultInput, signer));
    expect(noError).toBeInstanceOf(MessageSchemaError);
    expect((noError as MessageSchemaError).issues.map((i) => i.path)).toContain("/error");
    const withError = { ...succeededInput(), error: { code: "x", message: "y", retryable: false } } as unknown as StepResultInput;
    expect(thrown(() => buildStepResult(withError, signer))).toBeInstanceOf(MessageSchemaError);
  });

  it("refuses such results on the service side even when properly signed", () => {
    for (const fields of [{ outcome: "failed" }, { outcome: "succeeded", error: { code: "x", message: "y", retryable: false } }]) {
      const sealed = sealMessage({ domain: SIGNING_DOMAINS.stepResult, message: unsignedResult(fields), privateKey: node.privateKey });
      const error = thrown(() => verifyStepResult(overTheWire(sealed), verifyOptions));
      expect(error, JSON.stringify(fields)).toBeInstanceOf(MessageSchemaError);
      expect((error as MessageSchemaError).code).toBe("schema_invalid");
    }
  });

  it("refuses finishedAt before startedAt and a malformed manifest digest", () => {
    const early = { ...succeededInput(), finishedAt: new Date("2025-03-01T12:00:59.999Z") };
    expect((thrown(() => buildStepResult(early, signer)) as MessageSchemaError).issues[0]?.path).toBe("/finishedAt");
    for (const manifestDigest of ["sha256:ABC", `sha512:${"0".repeat(64)}`, `sha256:${"A".repeat(64)}`]) {
      expect(
        thrown(() => buildStepResult({ ...succeededInput(), manifestDigest }, signer)),
        manifestDigest,
      ).toBeInstanceOf(MessageSchemaError);
    }
  });

  it("rejects a result forged with another key as a bad signature", () => {
    const forged = buildStepResult(succeededInput(), { privateKey: intruder.privateKey });
    const error = thrown(() => verifyStepResult(overTheWire(forged), verifyOptions));
    expect(error).toBeInstanceOf(BadSignatureError);
    expect((error as BadSignatureError).code).toBe("bad_signature");
    const claimingNodeKey = { ...forged, signature: { ...forged.signature, keyId: keyIdOf(node.publicKey) } };
    expect(thrown(() => verifyStepResult(overTheWire(claimingNodeKey), verifyOptions))).toBeInstanceOf(BadSignatureError);
  });

  it("rejects a tampered result", () => {
    const result = buildStepResult(failedInput(), signer) as Extract<StepResult, { outcome: "failed" }>;
    const tampered = { ...result, error: { ...result.error, retryable: false } };
    expect(thrown(() => verifyStepResult(overTheWire(tampered), verifyOptions))).toBeInstanceOf(BadSignatureError);
  });

  it("echoes the envelope's traceparent under the node's signature", () => {
    const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const result = buildStepResult({ ...succeededInput(), traceparent }, signer);
    expect(verifyStepResult(overTheWire(result), verifyOptions).traceparent).toBe(traceparent);
    const rerouted = { ...result, traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b8-01" };
    expect(thrown(() => verifyStepResult(overTheWire(rerouted), verifyOptions))).toBeInstanceOf(BadSignatureError);
    expect(thrown(() => buildStepResult({ ...succeededInput(), traceparent: "not-a-traceparent" }, signer))).toBeInstanceOf(MessageSchemaError);
  });

  it("rejects a result from a different node than expected", () => {
    const fromOther = buildStepResult({ ...succeededInput(), nodeId: "node-other" }, signer);
    const error = thrown(() => verifyStepResult(overTheWire(fromOther), verifyOptions));
    expect(error).toBeInstanceOf(WrongNodeError);
    expect(error).toMatchObject({ code: "wrong_node", expectedNodeId: NODE_ID, actualNodeId: "node-other" });
  });

  it("lets the service read the claimed node before it knows which key to verify with", () => {
    const raw = overTheWire(buildStepResult(succeededInput(), signer));
    const claimed = parseUnverifiedStepResult(raw);
    expect(claimed.nodeId).toBe(NODE_ID);
    expect(verifyStepResult(raw, { nodeId: claimed.nodeId, nodePublicKey: node.publicKey })).toEqual(claimed);
  });

  it("cannot be verified with a signature made for an envelope (domain separation)", () => {
    const result = buildStepResult(succeededInput(), signer);
    const { signature, ...unsigned } = result;
    const covered = { ...unsigned, signature: { alg: signature.alg, keyId: signature.keyId } };
    // Same key, same bytes to sign, but under the envelope's domain.
    const envelopeDomainSignature = signCanonical({ domain: SIGNING_DOMAINS.stepEnvelope, value: covered, privateKey: node.privateKey });
    const relabelled = { ...result, signature: { ...signature, value: envelopeDomainSignature } };
    expect(thrown(() => verifyStepResult(overTheWire(relabelled), verifyOptions))).toBeInstanceOf(BadSignatureError);
    // Sanity: the same construction under the result domain does verify.
    const resultDomainSignature = signCanonical({ domain: SIGNING_DOMAINS.stepResult, value: covered, privateKey: node.privateKey });
    expect(verifyStepResult(overTheWire({ ...result, signature: { ...signature, value: resultDomainSignature } }), verifyOptions)).toEqual(result);
  });

  it("does not accept a signed envelope's signature on a result-shaped message", () => {
    // The service's own envelope signature, transplanted: wrong domain and wrong key, whichever is checked first.
    const envelope = buildStepEnvelope(envelopeInput(), { privateKey: service.privateKey });
    const result = buildStepResult(succeededInput(), signer);
    const transplanted = { ...result, signature: envelope.signature };
    expect(thrown(() => verifyStepResult(overTheWire(transplanted), { nodeId: NODE_ID, nodePublicKey: service.publicKey }))).toBeInstanceOf(BadSignatureError);
  });

  it("refuses a newer version with a message about the service, not a schema error", () => {
    const newer = { ...(overTheWire(buildStepResult(succeededInput(), signer)) as object), version: 2, extraV2: true };
    const error = thrown(() => verifyStepResult(newer, verifyOptions));
    expect(error).toBeInstanceOf(UnsupportedVersionError);
    expect(error).toMatchObject({ problem: "newer", messageType: "StepResult" });
    expect((error as Error).message).toMatch(/upgrade the flexnode service/);
  });

  it("refuses an unknown top-level field", () => {
    const raw = { ...(overTheWire(buildStepResult(succeededInput(), signer)) as object), logs: "..." };
    expect(thrown(() => verifyStepResult(raw, verifyOptions))).toBeInstanceOf(MessageSchemaError);
  });

  it("refuses to put secret-shaped output or error text on the results queue", () => {
    const withSecret = { ...succeededInput(), output: { kubeconfig: "users:\n- user:\n    token: abcdef.0123456789abcdef\n" } };
    const error = thrown(() => buildStepResult(withSecret, signer));
    expect(error).toBeInstanceOf(SecretInMessageError);
    expect((error as SecretInMessageError).findings).toEqual([{ path: "/output/kubeconfig", kind: "bootstrap-token" }]);
    const failed = failedInput() as Extract<StepResultInput, { outcome: "failed" }>;
    const leakyError = { ...failed, error: { ...failed.error, message: "auth failed with SharedAccessSignature sr=x&sig=y" } };
    expect(thrown(() => buildStepResult(leakyError, signer))).toBeInstanceOf(SecretInMessageError);
  });
});
