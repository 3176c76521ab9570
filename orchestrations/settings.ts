/**
 * App settings, parsed once per process with zod. Every setting the service reads is declared here, so
 * local.settings.sample.json and the infra can be checked against one list, and a bad value fails with its name.
 */
import { z } from "zod";

export const SettingsSchema = z
  .object({
    /** Durable task hub; host.json reads it as %DURABLE_TASK_HUB%. Azure Storage provider rule: 3–45 alphanumerics, letter first. */
    DURABLE_TASK_HUB: z.string().regex(/^[A-Za-z][A-Za-z0-9]{2,44}$/, "must be 3-45 letters or digits and start with a letter"),
    /** Azure Resource Manager endpoint; the local sandbox points it at the ARM emulator. */
    ARM_ENDPOINT: z.url({ protocol: /^https$/ }).default("https://management.azure.com"),
    /** Object (principal) id of the service's managed identity: Event Grid events it caused itself are ignored. */
    SERVICE_PRINCIPAL_ID: z.uuid().optional(),
    /** The Event Grid topic lifecycle CloudEvents are published to (identity: EventGrid Data Sender); absent = not published. */
    LIFECYCLE_EVENTS_ENDPOINT: z.url({ protocol: /^https$/ }).optional(),
    /** Client id of the user-assigned managed identity DefaultAzureCredential should use; absent = system-assigned. */
    AZURE_CLIENT_ID: z.uuid().optional(),
    /** Registry tables: a storage connection string (local: `UseDevelopmentStorage=true`)... */
    REGISTRY_CONNECTION: z.string().min(1).optional(),
    /** ...or, in Azure, the table endpoint reached with the managed identity. */
    REGISTRY_TABLE_ENDPOINT: z.url({ protocol: /^https?$/ }).optional(),
    /** Prefix of the registry's table names (letters and digits), so environments can share an account. */
    REGISTRY_TABLE_PREFIX: z
      .string()
      .regex(/^[A-Za-z][A-Za-z0-9]{0,30}$/, "must be 1-31 letters or digits, starting with a letter")
      .default("flexnode"),
    /** The service's public base URL, used in enrolment URLs; defaults to https://$WEBSITE_HOSTNAME, else the local host. */
    PUBLIC_BASE_URL: z.url({ protocol: /^https?$/ }).optional(),
    /** Set by App Service (platform) when its authentication is on; only then are client-principal headers trusted. */
    WEBSITE_AUTH_ENABLED: z.string().optional(),
    /**
     * Local development only (`func start`, which has no App Service authentication): a bearer token that makes its
     * caller the admin `local-admin`. The admin API refuses it wherever the platform runs the app (runsInAzure, in
     * functions/http/principal.ts), so a copied local setting can never become a way around Entra ID there; the rest of
     * the service, which never reads it, goes on working.
     */
    LOCAL_ADMIN_TOKEN: z
      .string()
      .min(32, "must be at least 32 characters (openssl rand -hex 32)")
      .regex(/^[\x21-\x7e]+$/, "must be printable ASCII without spaces (openssl rand -hex 32)")
      .optional(),
    /**
     * Set by the platform, never by us: each says the app runs in Azure. WEBSITE_INSTANCE_ID is set on App Service
     * plans but not on Flex Consumption (the host tells Flex/Legion apart by its absence); WEBSITE_SITE_NAME is set on
     * every plan, Flex included; WEBSITE_SKU is "FlexConsumption" there. Core Tools sets none of them.
     */
    WEBSITE_INSTANCE_ID: z.string().optional(),
    WEBSITE_SITE_NAME: z.string().optional(),
    WEBSITE_SKU: z.string().optional(),
    /** Set by App Service (platform): the app's host name. */
    WEBSITE_HOSTNAME: z.string().optional(),
    /**
     * Service Bus for the mailboxes: a connection string with a Manage rule (local, emulator)... The Functions Service Bus
     * trigger reads the same setting, so one name serves both.
     */
    SERVICEBUS_CONNECTION: z
      .string()
      .regex(/Endpoint=sb:\/\//i, "must be a Service Bus connection string (Endpoint=sb://...)")
      .optional(),
    /** ...or, in Azure, the namespace host reached with the managed identity (Azure Service Bus Data Owner). */
    SERVICEBUS_CONNECTION__fullyQualifiedNamespace: z
      .string()
      .regex(/^[a-z0-9-]+\.servicebus\.windows\.net$/i, "must be <namespace>.servicebus.windows.net")
      .optional(),
    /** What nodes pass as their namespace; defaults to the namespace host. */
    SERVICEBUS_NODE_NAMESPACE: z.string().min(1).optional(),
    /** Namespace-level rule with Listen only, whose key signs nodes' receive tokens (Key Vault reference in Azure). */
    MAILBOX_LISTEN_RULE: z.string().min(1).default("flexnode-node-listen"),
    MAILBOX_LISTEN_KEY: z.string().min(16, "must be the rule's shared access key").optional(),
    /** Namespace-level rule with Send only, whose key signs nodes' result tokens (Key Vault reference in Azure). */
    MAILBOX_SEND_RULE: z.string().min(1).default("flexnode-node-send"),
    MAILBOX_SEND_KEY: z.string().min(16, "must be the rule's shared access key").optional(),
    /** 32-byte data key, base64, that seals one-time secrets for nodes in the registry (Key Vault reference in Azure). */
    SECRETS_KEY: z
      .base64()
      .refine((k) => Buffer.from(k, "base64").length === 32, "must be 32 bytes, base64")
      .optional(),
    /** Pinned node artifacts (URLs + sha256 per architecture and Kubernetes version), JSON; see onboard/artifact-catalog.ts. */
    ARTIFACT_CATALOG: z.string().min(2).optional(),
    /** Saga timing overrides, JSON (tests and the local sandbox only); see onboard/timing.ts. */
    SAGA_TIMING: z.string().min(2).optional(),
    /** Sweeper: an onboarding saga running longer than this (or a node onboarding this long with none) is failed. */
    SWEEP_SAGA_DEADLINE_MINUTES: z.coerce.number().int().min(5).max(10_080).default(240),
    /** Sweeper: "true" removes managed resources no live node owns; otherwise they are only reported (audit + log). */
    SWEEP_REMOVE_ORPHANS: z.enum(["true", "false"]).default("false"),
    /** Sweeper: result de-duplication claims older than this are purged. */
    SWEEP_CLAIM_RETENTION_HOURS: z.coerce.number().int().min(1).max(8_760).default(168),
    /**
     * Finished sagas' Durable history (Completed, Failed, Terminated) older than this is purged daily: the Azure Storage
     * backend keeps it forever otherwise (the Durable Task Scheduler's own retention policy does the same job there).
     */
    DURABLE_HISTORY_RETENTION_DAYS: z.coerce.number().int().min(1).max(3_650).default(30),
    /** The service's Ed25519 private key (PKCS#8 PEM) that signs step envelopes (Key Vault reference in Azure). */
    SERVICE_SIGNING_KEY: z.string().includes("BEGIN PRIVATE KEY", { message: "must be a PKCS#8 PEM private key" }).optional(),
  })
  .refine((s) => (s.REGISTRY_CONNECTION === undefined) !== (s.REGISTRY_TABLE_ENDPOINT === undefined), {
    message: "set exactly one of REGISTRY_CONNECTION and REGISTRY_TABLE_ENDPOINT",
    path: ["REGISTRY_CONNECTION"],
  })
  .refine((s) => s.SERVICEBUS_CONNECTION === undefined || s.SERVICEBUS_CONNECTION__fullyQualifiedNamespace === undefined, {
    message: "set SERVICEBUS_CONNECTION or SERVICEBUS_CONNECTION__fullyQualifiedNamespace, not both",
    path: ["SERVICEBUS_CONNECTION"],
  });

/** Platform settings that say the app runs in Azure (App Service, Flex Consumption), where local-only credentials are refused. */
export const AZURE_PLATFORM_MARKERS = ["WEBSITE_INSTANCE_ID", "WEBSITE_SITE_NAME", "WEBSITE_SKU"] as const;

export function runsInAzure(env: Partial<Record<(typeof AZURE_PLATFORM_MARKERS)[number], string | undefined>>): boolean {
  return AZURE_PLATFORM_MARKERS.some((k) => (env[k] ?? "") !== "");
}

export type Settings = z.infer<typeof SettingsSchema>;

export function publicBaseUrl(s: Settings): string {
  if (s.PUBLIC_BASE_URL) return s.PUBLIC_BASE_URL.replace(/\/+$/, "");
  if (s.WEBSITE_HOSTNAME && !s.WEBSITE_HOSTNAME.startsWith("0.0.0.0")) return `https://${s.WEBSITE_HOSTNAME}`;
  return "http://localhost:7071";
}

export class SettingsError extends Error {
  constructor(readonly issues: { setting: string; message: string }[]) {
    super(`invalid app settings: ${issues.map((i) => `${i.setting}: ${i.message}`).join("; ")}`);
    this.name = "SettingsError";
  }
}

export function parseSettings(env: Record<string, string | undefined>): Settings {
  // Treat empty strings as unset: app settings cannot be deleted from some portals, only blanked.
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ""));
  const result = SettingsSchema.safeParse(present);
  if (!result.success) {
    throw new SettingsError(result.error.issues.map((i) => ({ setting: i.path.join(".") || "(root)", message: i.message })));
  }
  return result.data;
}

/** The process's settings. Parsed on every call: it costs microseconds and a changed setting is seen at once. */
const NAMES = Object.keys(SettingsSchema.shape);
let parsed: { raw: string; settings: Settings } | undefined;

/**
 * The process's settings, parsed again only when one of them changed (tests and the sandbox change them; Azure
 * restarts the app instead): every invocation asks, and a zod parse per invocation was a measurable share of it.
 */
export function settings(): Settings {
  const raw = NAMES.map((n) => process.env[n] ?? "").join("\u0000");
  if (parsed?.raw !== raw) parsed = { raw, settings: parseSettings(process.env) };
  return parsed.settings;
}

/** A client was asked for whose settings are not set (e.g. Service Bus in an app that only serves the admin API). */
export class NotConfiguredError extends Error {
  constructor(readonly what: string) {
    super(`${what} is not set`);
    this.name = "NotConfiguredError";
  }
}
