/**
 * Admin callers come through App Service authentication (Entra ID): the platform validates the token and forwards the
 * caller as the `x-ms-client-principal` header (base64 JSON with claims). App roles `FlexNode.Admin` (writes) and
 * `FlexNode.Reader` (reads) come from the `roles` claims. The header is only trustworthy when the platform put it
 * there, i.e. when App Service authentication is on (`WEBSITE_AUTH_ENABLED=True`, which only the platform sets);
 * otherwise anyone could send it.
 *
 * Locally (`func start`) there is no App Service authentication, and Core Tools listens on every interface: a forged
 * header would make anyone on the network an admin acting with the developer's Azure credentials. So locally the
 * admin API takes LOCAL_ADMIN_TOKEN instead, as `Authorization: Bearer <token>`, for the admin `local-admin`. Where
 * the platform runs the app that setting fails the settings parse and is never honoured, so it cannot be a backdoor.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { HttpRequest } from "@azure/functions";
import { z } from "zod";
import { runsInAzure, SettingsError, settings } from "../../orchestrations/settings.js";
import { ProblemError } from "./problem.js";

export const ADMIN_ROLE = "FlexNode.Admin";
export const READER_ROLE = "FlexNode.Reader";

export interface Principal {
  id: string;
  name: string;
  roles: string[];
}

/** The caller holding LOCAL_ADMIN_TOKEN; audit rows name it like any other admin. */
export const LOCAL_ADMIN: Readonly<Principal> = { id: "local-admin", name: "local-admin", roles: [ADMIN_ROLE] };

const ClientPrincipal = z.object({
  auth_typ: z.string().optional(),
  name_typ: z.string().optional(),
  role_typ: z.string().optional(),
  claims: z.array(z.object({ typ: z.string(), val: z.string() })).default([]),
});

const OID_CLAIM = "http://schemas.microsoft.com/identity/claims/objectidentifier";

export function authorizeAdmin(request: HttpRequest, access: "reader" | "admin"): Principal {
  const easyAuth = (process.env.WEBSITE_AUTH_ENABLED ?? "").toLowerCase() === "true";
  const localToken = localAdminToken();
  if (!easyAuth && localToken === undefined) {
    throw new ProblemError(401, "unauthenticated", "Authentication is not configured", {
      detail:
        "The admin API takes callers through App Service authentication: configure Microsoft Entra sign-in on the function app (infra/README.md). " +
        "Locally, where there is none, set LOCAL_ADMIN_TOKEN (openssl rand -hex 32) and send it as Authorization: Bearer <token>.",
    });
  }
  const principal = (easyAuth ? parsePrincipal(request) : undefined) ?? (localToken !== undefined ? localAdmin(request, localToken) : undefined);
  if (!principal) throw new ProblemError(401, "unauthenticated", "Sign in to use the admin API", {}, { "www-authenticate": 'Bearer realm="flexnode"' });
  const allowed = access === "admin" ? [ADMIN_ROLE] : [ADMIN_ROLE, READER_ROLE];
  if (!principal.roles.some((r) => allowed.includes(r))) {
    throw new ProblemError(403, "forbidden", "Your account lacks the app role this operation needs", { detail: `Requires ${allowed.join(" or ")}.` });
  }
  return principal;
}

/**
 * The local admin token, or undefined when none is set. In Azure it is refused here, from the raw environment, for the
 * admin API only (503 naming the setting): the nodes, the sagas and the results queue never read it and keep working.
 */
function localAdminToken(): string | undefined {
  if (!process.env.LOCAL_ADMIN_TOKEN) return undefined;
  if (runsInAzure(process.env)) {
    throw new ProblemError(503, "invalid-settings", "The service is misconfigured", {
      errors: [{ path: "/LOCAL_ADMIN_TOKEN", message: "is for local development only and is refused in Azure: remove it" }],
    });
  }
  try {
    return settings().LOCAL_ADMIN_TOKEN;
  } catch (error) {
    // A token too short to trust (or any other bad setting) is the operator's to fix: say which, as health does.
    if (!(error instanceof SettingsError)) throw error;
    throw new ProblemError(503, "invalid-settings", "The service is misconfigured", {
      errors: error.issues.map((i) => ({ path: `/${i.setting}`, message: i.message })),
    });
  }
}

function localAdmin(request: HttpRequest, token: string): Principal | undefined {
  const presented = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.get("authorization") ?? "")?.[1];
  if (presented === undefined) return undefined;
  // Digests have equal length whatever was sent, so timingSafeEqual compares without revealing where they differ.
  const digest = (v: string) => createHash("sha256").update(v, "utf8").digest();
  return timingSafeEqual(digest(presented), digest(token)) ? { ...LOCAL_ADMIN, roles: [...LOCAL_ADMIN.roles] } : undefined;
}

function parsePrincipal(request: HttpRequest): Principal | undefined {
  const header = request.headers.get("x-ms-client-principal");
  if (!header) return undefined;
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(header, "base64").toString("utf8"));
  } catch {
    return undefined;
  }
  const parsed = ClientPrincipal.safeParse(decoded);
  if (!parsed.success) return undefined;
  const { claims, name_typ: nameType = "name", role_typ: roleType = "roles" } = parsed.data;
  const claim = (typ: string) => claims.find((c) => c.typ === typ)?.val;
  const id = request.headers.get("x-ms-client-principal-id") ?? claim(OID_CLAIM) ?? claim("oid") ?? "unknown";
  const name = request.headers.get("x-ms-client-principal-name") ?? claim(nameType) ?? claim("preferred_username") ?? id;
  return { id, name, roles: claims.filter((c) => c.typ === roleType || c.typ === "roles").map((c) => c.val) };
}

/** Builds the header App Service would send; for tests, the sandbox and curl examples. */
export function clientPrincipalHeader(p: { name: string; id?: string; roles: string[] }): string {
  const claims = [
    { typ: "name", val: p.name },
    { typ: OID_CLAIM, val: p.id ?? "00000000-0000-0000-0000-000000000000" },
    ...p.roles.map((r) => ({ typ: "roles", val: r })),
  ];
  return Buffer.from(JSON.stringify({ auth_typ: "aad", name_typ: "name", role_typ: "roles", claims })).toString("base64");
}
