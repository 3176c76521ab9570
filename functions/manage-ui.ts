/**
 * The fleet page: `GET /api/manage/ui` (Reader role), plain HTML with a small ES module and a style sheet over the
 * admin API, no build step. The files live in functions/ui/ and ship as they are (tsc does not copy them, so from
 * dist/functions/ the folder is two levels up). The OpenAPI document lists them under the tag `ui`, which the CLI
 * leaves out.
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { ADMIN_ROLE } from "./http/principal.js";
import { defineRoute, httpRoute } from "./http/route.js";
import type { ServiceProvider } from "../orchestrations/services.js";

const ASSETS = { "fleet.js": "text/javascript; charset=utf-8", "fleet.css": "text/css; charset=utf-8" } as const;
type Asset = keyof typeof ASSETS | "fleet.html";

/** Scripts and styles only from the app itself, no inline script, no framing: the page shows data from machines. */
const SECURITY_HEADERS = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cache-control": "no-store",
};

const uiDir = (() => {
  const here = new URL("./ui/", import.meta.url);
  const packaged = new URL("../../functions/ui/", import.meta.url);
  return fileURLToPath(existsSync(new URL("fleet.html", here)) ? here : packaged);
})();

const files = new Map<Asset, Promise<string>>();
const load = (name: Asset): Promise<string> => {
  let file = files.get(name);
  if (!file) files.set(name, (file = readFile(`${uiDir}${name}`, "utf8")));
  return file;
};

const page = defineRoute({
  name: "manageUi",
  method: "GET",
  route: "manage/ui",
  summary: "The fleet page",
  tag: "ui",
  access: "reader",
  responses: { 200: { description: "The page", contentTypes: ["text/html"] } },
});
const asset = defineRoute({
  name: "manageUiAsset",
  method: "GET",
  route: "manage/ui/{asset}",
  summary: "The fleet page's script and style sheet",
  tag: "ui",
  access: "reader",
  params: z.strictObject({ asset: z.enum(Object.keys(ASSETS) as [keyof typeof ASSETS]) }),
  responses: { 200: { description: "The file", contentTypes: ["text/javascript", "text/css"] } },
});

const escapeAttribute = (s: string) => s.replace(/[&"<>]/g, (c) => `&#${c.charCodeAt(0)};`);

export function registerUiRoutes(services: ServiceProvider): void {
  httpRoute(page, services, async ({ principal }) => {
    // The role decides which buttons the page offers; the API checks it again on every write.
    const role = principal.roles.includes(ADMIN_ROLE) ? "admin" : "reader";
    const html = (await load("fleet.html")).replace("{{role}}", role).replace("{{user}}", escapeAttribute(principal.name));
    return { status: 200, body: html, headers: { ...SECURITY_HEADERS, "content-type": "text/html; charset=utf-8" } };
  });
  httpRoute(asset, services, async ({ params }) => {
    const name = params.asset;
    return { status: 200, body: await load(name), headers: { ...SECURITY_HEADERS, "content-type": ASSETS[name] } };
  });
}
