/** The documented JSON schemas of the lifecycle events' data, as files: docs/events/<type>.schema.json. */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { LIFECYCLE_EVENT_KINDS, LIFECYCLE_EVENT_PREFIX, lifecycleDataSchema } from "../../contract/lifecycle-events.js";

export const EVENT_SCHEMA_DIR = fileURLToPath(new URL("../../docs/events/", import.meta.url));

export const eventSchemaFiles = (): [string, string][] =>
  LIFECYCLE_EVENT_KINDS.map((k) => [
    join(EVENT_SCHEMA_DIR, `${LIFECYCLE_EVENT_PREFIX}${k}.schema.json`),
    `${JSON.stringify(lifecycleDataSchema(k), null, 2)}\n`,
  ]);
