/**
 * App settings, parsed once per process with zod. Every setting the service reads is declared here, so
 * local.settings.sample.json and the infra can be checked against one list, and a bad value fails with its name.
 */
import { z } from "zod";

export const SettingsSchema = z.object({
  /** Durable task hub; host.json reads it as %DURABLE_TASK_HUB%. Azure Storage provider rule: 3–45 alphanumerics, letter first. */
  DURABLE_TASK_HUB: z.string().regex(/^[A-Za-z][A-Za-z0-9]{2,44}$/, "must be 3-45 letters or digits and start with a letter"),
  /** Azure Resource Manager endpoint; the local sandbox points it at the ARM emulator. */
  ARM_ENDPOINT: z.url({ protocol: /^https$/ }).default("https://management.azure.com"),
  /** Client id of the user-assigned managed identity DefaultAzureCredential should use; absent = system-assigned. */
  AZURE_CLIENT_ID: z.uuid().optional(),
});

export type Settings = z.infer<typeof SettingsSchema>;

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
export function settings(): Settings {
  return parseSettings(process.env);
}
