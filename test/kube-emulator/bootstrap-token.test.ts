import { describe, expect, it } from "vitest";
import { BOOTSTRAP_TOKEN_PATTERN, bootstrapTokenSecret } from "../../orchestrations/clients/kube/index.js";

const expiresAt = new Date("2030-01-01T01:00:00.750Z");

describe("bootstrapTokenSecret", () => {
  it("builds a token and its kube-system Secret with every field the authenticator reads", () => {
    const issued = bootstrapTokenSecret({ pool: "gpu", nodeId: "fn-0123", expiresAt });
    expect(issued.token).toMatch(BOOTSTRAP_TOKEN_PATTERN);
    expect(issued.token.startsWith(`${issued.tokenId}.`)).toBe(true);
    expect(issued.secret).toEqual({
      name: `bootstrap-token-${issued.tokenId}`,
      type: "bootstrap.kubernetes.io/token",
      stringData: {
        description: expect.stringContaining("fn-0123") as unknown,
        "token-id": issued.tokenId,
        "token-secret": issued.token.split(".")[1],
        // Whole seconds, rounded down: never later than asked.
        expiration: "2030-01-01T01:00:00Z",
        "usage-bootstrap-authentication": "true",
        "auth-extra-groups": "system:bootstrappers:flexnode:gpu",
      },
      labels: { "app.kubernetes.io/managed-by": "flexnode-onboarding", "flexnode.dev/node-id": "fn-0123", "flexnode.dev/pool": "gpu" },
    });
  });

  it("draws a fresh token every time", () => {
    const tokens = new Set(Array.from({ length: 200 }, () => bootstrapTokenSecret({ pool: "gpu", nodeId: "n", expiresAt }).token));
    expect(tokens.size).toBe(200);
    const chars = new Set([...tokens].join("").replace(".", ""));
    expect(chars.size).toBeGreaterThan(30);
  });

  it("reuses a token the caller already holds, so a retry recreates the same Secret", () => {
    const first = bootstrapTokenSecret({ pool: "gpu", nodeId: "n", expiresAt });
    const again = bootstrapTokenSecret({ pool: "gpu", nodeId: "n", expiresAt, token: first.token });
    expect(again).toEqual(first);
    expect(() => bootstrapTokenSecret({ pool: "gpu", nodeId: "n", expiresAt, token: "ABCDEF.0123456789abcdef" })).toThrow(/not a bootstrap token/);
  });

  it("refuses inputs that would make an unusable Secret", () => {
    expect(() => bootstrapTokenSecret({ pool: "Bad_Pool", nodeId: "n", expiresAt })).toThrow(RangeError);
    expect(() => bootstrapTokenSecret({ pool: "gpu", nodeId: "not a label", expiresAt })).toThrow(RangeError);
    expect(() => bootstrapTokenSecret({ pool: "gpu", nodeId: "n", expiresAt: new Date(Number.NaN) })).toThrow(RangeError);
  });
});
