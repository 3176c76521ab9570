/** The CLI's credentials: the sandbox token as given; an Entra token fetched once and reused from a 0600 cache until near expiry. */
import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AccessToken, TokenCredential } from "@azure/core-auth";
import { afterEach, describe, expect, it } from "vitest";
import { authorization } from "../../admin-cli/auth.js";
import { UsageError } from "../../admin-cli/request.js";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Stands in for the sign-in (device code or browser): counts how often a token was asked for. */
function signIn(expiresInMs: number): TokenCredential & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    getToken: (scope): Promise<AccessToken> => {
      calls.push(String(scope));
      return Promise.resolve({ token: `entra-${calls.length}`, expiresOnTimestamp: Date.now() + expiresInMs });
    },
  };
}

describe("flexnode credentials", () => {
  it("uses the sandbox token as given, and refuses to guess without one or a scope", async () => {
    expect(await authorization({ token: "abc", prompt: () => undefined })).toBe("Bearer abc");
    await expect(authorization({ prompt: () => undefined })).rejects.toBeInstanceOf(UsageError);
  });

  it("signs in once and reuses the cached token (0600) until five minutes before it expires", async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), "flexnode-auth-"));
    dirs.push(cacheDir);
    const credential = signIn(3600_000);
    const options = { scope: "api://flexnode/.default", clientId: "c", prompt: () => undefined, credential, cacheDir };
    expect(await authorization(options)).toBe("Bearer entra-1");
    expect(await authorization(options)).toBe("Bearer entra-1");
    expect(credential.calls).toEqual(["api://flexnode/.default"]);
    const [file] = readdirSync(cacheDir);
    expect(statSync(join(cacheDir, file!)).mode & 0o777).toBe(0o600);

    const shortLived = signIn(60_000);
    const other = { ...options, scope: "api://other/.default", credential: shortLived };
    await authorization(other);
    await authorization(other);
    expect(shortLived.calls).toHaveLength(2);
  });
});
