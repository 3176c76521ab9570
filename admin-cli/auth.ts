/**
 * How the CLI proves who it is. Against the local sandbox: the run's admin bearer token (`--token` or
 * FLEXNODE_ADMIN_TOKEN), which the sandbox's App Service authentication stand-in maps to an admin. Against a deployed
 * app: an Entra access token for the app's API (`--scope`, e.g. api://<app client id>/.default), obtained with
 * @azure/identity by device code (default; works over SSH) or in a browser, through a public client app registration
 * (`--client-id`, `--tenant`); App Service authentication validates it and adds the caller's app roles. The token is
 * cached until shortly before it expires in ~/.config/flexnode/token-<hash>.json (mode 0600), so a session signs in once.
 *
 * An Entra token is a bearer credential for the operator's whole admin role: it goes only to an https API (a plain
 * http URL would show it to anyone on the path), and its cache is keyed by the API's origin too, so a token fetched
 * for one deployment is never sent to another that happens to share the scope (a typo'd or hostile --url).
 */
import { createHash } from "node:crypto";
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { DeviceCodeCredential, InteractiveBrowserCredential, type TokenCredential } from "@azure/identity";
import { z } from "zod";
import { UsageError } from "./request.js";

export interface AuthOptions {
  token?: string;
  /** The API's base URL: an Entra token goes only to https, and is cached per origin. */
  url?: string;
  scope?: string;
  tenant?: string;
  clientId?: string;
  login?: "device" | "browser";
  /** Where prompts (the device code message) go. */
  prompt: (line: string) => void;
  /** For tests: the credential to use instead of a sign-in, and the cache directory. */
  credential?: TokenCredential;
  cacheDir?: string;
}

const Cached = z.object({ token: z.string(), expiresOnTimestamp: z.number() });
/** A token this close to expiry is not reused: a request may take a while. */
const EARLY_MS = 5 * 60_000;

export async function authorization(options: AuthOptions): Promise<string> {
  if (options.token) return `Bearer ${options.token}`;
  if (!options.scope) {
    throw new UsageError(
      "no credentials: pass --token (or FLEXNODE_ADMIN_TOKEN) for the local sandbox, or --scope (or FLEXNODE_SCOPE) and --client-id to sign in with Entra ID",
    );
  }
  const origin = entraApiOrigin(options.url);
  const dir = options.cacheDir ?? join(process.env.XDG_CONFIG_HOME ?? join(homedir(), ".config"), "flexnode");
  const file = join(
    dir,
    `token-${createHash("sha256")
      .update(`${origin}\n${options.tenant ?? ""}\n${options.clientId ?? ""}\n${options.scope}`)
      .digest("hex")
      .slice(0, 16)}.json`,
  );
  const cached = readCache(file);
  if (cached && cached.expiresOnTimestamp - EARLY_MS > Date.now()) return `Bearer ${cached.token}`;
  const credential = options.credential ?? signIn(options);
  const token = await credential.getToken(options.scope);
  if (!token) throw new Error("sign-in returned no token");
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(file, JSON.stringify({ token: token.token, expiresOnTimestamp: token.expiresOnTimestamp }), { mode: 0o600 });
  chmodSync(file, 0o600);
  return `Bearer ${token.token}`;
}

/** The origin an Entra token may be sent to: the explicit https URL of a deployed app, nothing else. */
export function entraApiOrigin(url: string | undefined): string {
  if (!url) throw new UsageError("signing in with Entra ID needs the deployed app's URL: pass --url https://<app>.azurewebsites.net (or FLEXNODE_URL)");
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`--url is not a URL (got '${url}')`);
  }
  if (parsed.protocol !== "https:") {
    throw new UsageError(`refusing to send an Entra ID token over ${parsed.protocol.replace(/:$/, "")}: --url must be https (got '${url}')`);
  }
  return parsed.origin;
}

function signIn(options: AuthOptions): TokenCredential {
  if (!options.clientId) throw new UsageError("--client-id (or FLEXNODE_CLIENT_ID): the public client app registration to sign in through");
  const common = { tenantId: options.tenant, clientId: options.clientId };
  if (options.login === "browser") return new InteractiveBrowserCredential({ ...common, redirectUri: "http://localhost" });
  return new DeviceCodeCredential({ ...common, userPromptCallback: (info) => options.prompt(info.message) });
}

function readCache(file: string): z.infer<typeof Cached> | undefined {
  try {
    return Cached.parse(JSON.parse(readFileSync(file, "utf8")));
  } catch {
    return undefined;
  }
}
