/**
 * Test credentials and how the emulator reads them back. The token is an unsigned JWT so code under test that peeks
 * at claims (oid, appid, tid) sees the same claim names as with Entra ID tokens; the emulator maps it to the caller.
 */
import type { AccessToken, TokenCredential } from "@azure/core-auth";
import { WallClock, type Clock } from "../support/index.js";
import { armErrors } from "./arm-error.js";

export const DEFAULT_TENANT_ID = "00000000-0000-4000-8000-00000000a12e";

export type PrincipalType = "ServicePrincipal" | "User" | "Group" | "ForeignGroup" | "Device";

export interface Caller {
  principalId: string;
  tenantId: string;
  /** Client (application) id; for a service principal ARM reports it as the `appid` claim. */
  appId: string;
  principalType: PrincipalType;
}

export interface EmulatorCredentialOptions {
  tenantId?: string;
  appId?: string;
  principalType?: PrincipalType;
  /**
   * Source of the token's expiry. The SDK compares `expiresOnTimestamp` with the wall clock, so this defaults to a
   * WallClock even when the emulator runs on a ManualClock.
   */
  clock?: Clock;
}

const TOKEN_LIFETIME_MS = 60 * 60 * 1000;

export function emulatorToken(principalId: string, options: EmulatorCredentialOptions = {}, nowMs = 0, audience = "https://management.azure.com/"): string {
  const claims = {
    aud: audience,
    iss: `https://sts.windows.net/${options.tenantId ?? DEFAULT_TENANT_ID}/`,
    iat: Math.floor(nowMs / 1000),
    nbf: Math.floor(nowMs / 1000),
    exp: Math.floor((nowMs + TOKEN_LIFETIME_MS) / 1000),
    oid: principalId,
    sub: principalId,
    tid: options.tenantId ?? DEFAULT_TENANT_ID,
    appid: options.appId ?? principalId,
    idtyp: (options.principalType ?? "ServicePrincipal") === "User" ? "user" : "app",
  };
  return `${base64url({ alg: "none", typ: "JWT" })}.${base64url(claims)}.emulator`;
}

/** A TokenCredential whose bearer token makes the emulator treat the caller as `principalId`. */
export function emulatorCredential(principalId: string, options: EmulatorCredentialOptions = {}): TokenCredential {
  const clock = options.clock ?? new WallClock();
  return {
    getToken(scopes: string | string[]): Promise<AccessToken> {
      const now = clock.now();
      // The audience is the resource the scope names, as Entra ID issues it: "<resource>/.default" → "<resource>".
      const scope = Array.isArray(scopes) ? scopes[0] : scopes;
      const resource = scope?.replace(/\/\.default$/, "") ?? "https://management.azure.com";
      const audience = /^https?:\/\//.test(resource) ? `${resource.replace(/\/+$/, "")}/` : resource;
      return Promise.resolve({
        token: emulatorToken(principalId, options, now, audience),
        expiresOnTimestamp: now + TOKEN_LIFETIME_MS,
        tokenType: "Bearer",
      });
    },
  };
}

/** Maps the Authorization header to the caller; throws the 401 ARM would answer with. */
export function callerFromAuthorization(header: string | undefined): Caller {
  if (header === undefined || header.trim() === "") throw armErrors.missingAuthorization();
  const m = /^Bearer\s+([^.\s]+)\.([^.\s]+)\.(\S*)$/i.exec(header.trim());
  if (!m) throw armErrors.invalidToken();
  let claims: unknown;
  try {
    claims = JSON.parse(Buffer.from(m[2]!, "base64url").toString("utf8"));
  } catch {
    throw armErrors.invalidToken();
  }
  if (typeof claims !== "object" || claims === null) throw armErrors.invalidToken();
  const { oid, tid, appid, idtyp } = claims as Record<string, unknown>;
  if (typeof oid !== "string" || oid === "") throw armErrors.invalidToken();
  return {
    principalId: oid,
    tenantId: typeof tid === "string" ? tid : DEFAULT_TENANT_ID,
    appId: typeof appid === "string" ? appid : oid,
    principalType: idtyp === "user" ? "User" : "ServicePrincipal",
  };
}

function base64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value), "utf8").toString("base64url");
}
