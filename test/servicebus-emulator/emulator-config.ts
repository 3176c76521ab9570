/** The JSON config file the CLI reads: namespace name, shared access rules, queues. Validated with zod. */
import { readFileSync } from "node:fs";
import { z } from "zod";
import { queueDefinitionSchema } from "./queue-settings.js";

export const emulatorConfigSchema = z
  .object({
    namespace: z
      .string()
      .regex(/^[a-z0-9.-]+$/i)
      .optional(),
    rules: z
      .array(
        z
          .object({
            name: z.string().min(1).max(256),
            key: z.string().min(1),
            rights: z.array(z.enum(["Manage", "Send", "Listen"])).min(1),
          })
          .strict(),
      )
      .min(1)
      .optional(),
    queues: z.array(queueDefinitionSchema).optional(),
  })
  .strict();

export type EmulatorConfig = z.output<typeof emulatorConfigSchema>;

export function parseEmulatorConfig(json: unknown, source = "config"): EmulatorConfig {
  const result = emulatorConfigSchema.safeParse(json);
  if (!result.success) {
    const issues = result.error.issues.map((issue) => `  ${issue.path.join(".") || "(root)"}: ${issue.message}`).join("\n");
    throw new Error(`invalid ${source}:\n${issues}`);
  }
  return result.data;
}

export function loadEmulatorConfig(path: string): EmulatorConfig {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, "utf8"));
  } catch (error) {
    throw new Error(`cannot read ${path}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  return parseEmulatorConfig(json, path);
}
