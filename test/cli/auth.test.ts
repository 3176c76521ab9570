/**
 * The CLI's credentials: the sandbox token as given; an Entra token fetched once and reused from a 0600 cache until
 * near expiry, sent only to the https API it was fetched for.
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AccessToken, TokenCredential } from "@azure/core-auth";
import { afterEach, describe, expect, it } from "vitest";
import { authorization } from "../../admin-cli/auth.js";
import { run } from "../../admin-cli/main.js";
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
    const options = { url: "https://func-a.azurewebsites.net", scope: "api://flexnode/.default", clientId: "c", prompt: () => undefined, credential, cacheDir };
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

  it("sends an Entra token only to an explicit https URL, and keys its cache by the API's origin", async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), "flexnode-auth-"));
    dirs.push(cacheDir);
    const credential = signIn(3600_000);
    const base = { scope: "api://flexnode/.default", clientId: "c", prompt: () => undefined, credential, cacheDir };
    for (const url of [undefined, "http://127.0.0.1:7071", "http://func-a.azurewebsites.net", "not a url"]) {
      await expect(authorization({ ...base, url }), String(url)).rejects.toBeInstanceOf(UsageError);
    }
    expect(credential.calls).toEqual([]);

    expect(await authorization({ ...base, url: "https://func-a.azurewebsites.net/" })).toBe("Bearer entra-1");
    expect(await authorization({ ...base, url: "https://func-a.azurewebsites.net/api" })).toBe("Bearer entra-1");
    // Same tenant, client and scope, another API: the cached token is not reused for it.
    expect(await authorization({ ...base, url: "https://func-b.azurewebsites.net" })).toBe("Bearer entra-2");
    expect(readdirSync(cacheDir)).toHaveLength(2);
  });

  it("the CLI refuses an Entra sign-in against the local default or plain http before anything is sent", async () => {
    for (const extra of [[], ["--url", "http://func-a.azurewebsites.net"]]) {
      const sent: string[] = [];
      const err: string[] = [];
      const code = await run(["pools", "list", "--scope", "api://flexnode/.default", "--client-id", "c", ...extra], {
        out: () => undefined,
        err: (l) => err.push(l),
        env: {},
        fetch: ((url: string) => {
          sent.push(url);
          return Promise.resolve(new Response("[]", { status: 200, headers: { "content-type": "application/json" } }));
        }) as unknown as typeof fetch,
      });
      expect([code, sent]).toEqual([2, []]);
      expect(err.join("\n")).toMatch(/https/);
    }
  });

  it("the CLI's help steers the token to the environment rather than the command line", async () => {
    const out: string[] = [];
    expect(await run(["--help"], { out: (l) => out.push(l), err: () => undefined, env: {} })).toBe(0);
    expect(out.join("\n")).toMatch(/Prefer FLEXNODE_ADMIN_TOKEN to --token/);
  });
});
