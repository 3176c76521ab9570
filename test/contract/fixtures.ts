/** Keys and well-formed inputs shared by the contract tests. */
import { generateKeyPairSync, type KeyObject } from "node:crypto";
import type { StepEnvelopeInput, StepResultInput } from "../../contract/index.js";

export interface KeyPair {
  publicKey: KeyObject;
  privateKey: KeyObject;
}

export function ed25519(): KeyPair {
  return generateKeyPairSync("ed25519");
}

export const service = ed25519();
export const node = ed25519();
export const intruder = ed25519();

export const NODE_ID = "node-7f3c2a";
export const ISSUED_AT = new Date("2025-03-01T12:00:00.000Z");
export const EXPIRES_AT = new Date("2025-03-01T12:10:00.000Z");
/** Inside the envelope's validity window. */
export const NOW = new Date("2025-03-01T12:01:00.000Z");

export function envelopeInput(overrides: Partial<StepEnvelopeInput> = {}): StepEnvelopeInput {
  return {
    nodeId: NODE_ID,
    sagaId: "onboard:node-7f3c2a",
    stepId: "05-sysctl",
    attempt: 1,
    kind: "sysctl",
    params: { settings: { "net.ipv4.ip_forward": "1", "net.bridge.bridge-nf-call-iptables": "1" }, persist: true },
    issuedAt: ISSUED_AT,
    expiresAt: EXPIRES_AT,
    ...overrides,
  };
}

export const MANIFEST_DIGEST = `sha256:${"ab".repeat(32)}`;

export function succeededInput(): StepResultInput {
  return {
    nodeId: NODE_ID,
    sagaId: "onboard:node-7f3c2a",
    stepId: "05-sysctl",
    attempt: 1,
    outcome: "succeeded",
    output: { changed: ["net.ipv4.ip_forward"] },
    startedAt: new Date("2025-03-01T12:01:00.000Z"),
    finishedAt: new Date("2025-03-01T12:01:02.500Z"),
    manifestDigest: MANIFEST_DIGEST,
  };
}

export function failedInput(): StepResultInput {
  return {
    ...succeededInput(),
    outcome: "failed",
    output: undefined,
    error: { code: "sysctl.write_failed", message: "net.bridge.bridge-nf-call-iptables: no such file (br_netfilter not loaded?)", retryable: true },
  };
}

/** The message as the other side receives it: serialized and parsed, with no shared object identity. */
export function overTheWire<T>(value: T): unknown {
  return JSON.parse(JSON.stringify(value));
}

/** Runs `fn` and returns what it threw, failing the test if it did not throw. */
export function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error("expected a throw");
}

export async function rejected(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected a rejection");
}

/**
 * fast-check's JSON arbitraries generate own "__proto__" keys on purpose; the contract refuses them (a zod record
 * drops such a key, so it could never verify), so properties about valid JSON leave them out.
 */
export function hasProtoKey(value: unknown): boolean {
  if (typeof value !== "object" || value === null) return false;
  if (Array.isArray(value)) return value.some(hasProtoKey);
  return Object.entries(value).some(([key, item]) => key === "__proto__" || hasProtoKey(item));
}
