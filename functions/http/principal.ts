/**
 * Admin callers come through App Service authentication (Entra ID): the platform validates the token and forwards the
 * caller as the `x-ms-client-principal` header (base64 JSON with claims). App roles `FlexNode.Admin` (writes) and
 * `FlexNode.Reader` (reads) come from the `roles` claims. The header is only trustworthy when the platform put it
 * there, i.e. when App Service authentication is on (`WEBSITE_AUTH_ENABLED=True`); otherwise anyone could send it,
 * so the admin API refuses to run.
 */
import type { HttpRequest } from "@azure/functions";
import { z } from "zod";
import { ProblemError } from "./problem.js";

export const ADMIN_ROLE = "FlexNode.Admin";
export const READER_ROLE = "FlexNode.Reader";

export interface Principal {
  id: string;
  name: string;
  roles: string[];
}

const ClientPrincipal = z.object({
  auth_typ: z.string().optional(),
  name_typ: z.string().optional(),
  role_typ: z.string().optional(),
  claims: z.array(z.object({ typ: z.string(), val: z.string() })).default([]),
});

const OID_CLAIM = "http://schemas.microsoft.com/identity/claims/objectidentifier";

export function authorizeAdmin(request: HttpRequest, access: "reader" | "admin"): Principal {
  if ((process.env.WEBSITE_AUTH_ENABLED ?? "").toLowerCase() !== "true") {
    throw new ProblemError(401, "unauthenticated", "Authentication is not configured", {
      detail: "The admin API needs App Service authentication (WEBSITE_AUTH_ENABLED=True); without it client-principal headers cannot be trusted.",
    });
  }
  const principal = parsePrincipal(request);
  if (!principal) throw new ProblemError(401, "unauthenticated", "Sign in to use the admin API", {}, { "www-authenticate": 'Bearer realm="flexnode"' });
  const allowed = access === "admin" ? [ADMIN_ROLE] : [ADMIN_ROLE, READER_ROLE];
  if (!principal.roles.some((r) => allowed.includes(r))) {
    throw new ProblemError(403, "forbidden", "Your account lacks the app role this operation needs", { detail: `Requires ${allowed.join(" or ")}.` });
  }
  return principal;
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
